//! Integration tests of palisade-inventory: crafted images and layers, hostile archives,
//! catalogers on written fixtures, and real images built with podman and skopeo.

mod support;

mod inventory {
    mod cancel;
    mod catalog;
    mod hostile;
    mod image;
    mod real_image;
    mod releases;
}
