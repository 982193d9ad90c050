//! Container images as files: OCI layout directories, OCI archives and `docker save`
//! archives, read in place (archive members are read at their offsets, never extracted).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::Digest;

use crate::cancel::Cancel;
use crate::error::{Error, ErrorKind};
use crate::layer::{LayerContext, LayerFailure, walk_layer};
use crate::limits::Limits;
use crate::path::normalize_entry;
use crate::walk::{FileVisit, Walk};

/// A container image opened from a file or directory.
#[derive(Debug)]
pub struct Image {
    path: PathBuf,
    format: ImageFormat,
    reference: Option<String>,
    id: String,
    os: Option<String>,
    architecture: Option<String>,
    layers: Vec<Layer>,
    blobs: BlobStore,
}

/// How an image is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/`).
    OciLayout,
    /// An OCI image layout in a tar archive (`skopeo copy ... oci-archive:FILE`).
    OciArchive,
    /// A `docker save` archive (`manifest.json`, per-layer tars), or such a directory.
    DockerArchive,
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The layer's position, 0 for the base layer.
    pub index: usize,
    /// The digest of the uncompressed layer (the configuration's diff id), which is the same
    /// whichever format or compression the image is stored in; the blob digest when the
    /// configuration lists no diff ids.
    pub digest: String,
    /// The digest of the stored blob, as the manifest names it.
    pub blob_digest: String,
    /// The media type from the manifest (`application/vnd.oci.image.layer.v1.tar+gzip`,
    /// ...); compression is detected from the bytes, not from this.
    pub media_type: String,
    /// The stored blob's size when the manifest or archive records it.
    pub size: Option<u64>,
    blob: String,
}

/// Nested indexes followed before giving up (an index pointing at itself would loop).
const MAX_INDEX_DEPTH: usize = 4;

impl Image {
    /// Opens an OCI layout directory, an OCI archive, a `docker save` archive or an extracted
    /// `docker save` directory. Reads only the JSON documents; layers are read by
    /// [`Image::for_each_file`].
    pub fn open(path: &Path) -> Result<Image, Error> {
        Image::open_with_limits(path, &Limits::default())
    }

    /// [`Image::open`] with explicit limits on documents and layer count.
    pub fn open_with_limits(path: &Path, limits: &Limits) -> Result<Image, Error> {
        let metadata = std::fs::metadata(path).map_err(|source| Error::io(path, source))?;
        let blobs = if metadata.is_dir() {
            BlobStore::Directory(path.to_owned())
        } else {
            BlobStore::archive(path)?
        };
        let image = if blobs.contains("index.json") {
            let format = match blobs {
                BlobStore::Directory(_) => ImageFormat::OciLayout,
                BlobStore::Archive { .. } => ImageFormat::OciArchive,
            };
            open_oci(path, format, blobs, limits)?
        } else if blobs.contains("manifest.json") {
            open_docker(path, blobs, limits)?
        } else {
            return Err(ErrorKind::NotAnImage {
                path: path.to_owned(),
                reason: "neither index.json (OCI) nor manifest.json (docker save) found".into(),
            }
            .into());
        };
        if image.layers.len() > limits.max_layers {
            return Err(Error::limit(
                path.display().to_string(),
                format!(
                    "{} layers, over max_layers = {}",
                    image.layers.len(),
                    limits.max_layers
                ),
            ));
        }
        Ok(image)
    }

    /// Where the image was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How the image is stored.
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    /// The image's name as recorded (`org.opencontainers.image.ref.name`, or the first
    /// `RepoTags` entry of a docker archive).
    pub fn reference(&self) -> Option<&str> {
        self.reference.as_deref()
    }

    /// The image id: `sha256:` and the digest of its configuration document, the same for
    /// every storage format.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The operating system and architecture from the configuration.
    pub fn platform(&self) -> (Option<&str>, Option<&str>) {
        (self.os.as_deref(), self.architecture.as_deref())
    }

    /// The layers, base layer first.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Streams every regular file of every layer, base layer first, to `visit`, and returns
    /// the flattened tree (after whiteouts and opaque directories) with the entries skipped.
    ///
    /// Nothing is written to disk. Hostile entries (absolute paths, `..`, hard links out of
    /// the root, devices) are skipped with a [`crate::Warning`]; a truncated or corrupt layer
    /// stops the walk with [`ErrorKind::Layer`]; exceeding a [`Limits`] value stops it with
    /// [`ErrorKind::LimitExceeded`]. An error returned by `visit` stops it with
    /// [`ErrorKind::Visit`]; `cancel`, with [`ErrorKind::Cancelled`].
    pub fn for_each_file(
        &self,
        limits: &Limits,
        cancel: &Cancel,
        mut visit: impl FnMut(&mut FileVisit<'_>) -> std::io::Result<()>,
    ) -> Result<Walk, Error> {
        let mut walk = Walk::default();
        for layer in &self.layers {
            if cancel.is_cancelled() {
                return Err(Error::cancelled(&self.path));
            }
            let blob = self.blobs.open(&layer.blob)?;
            let context = LayerContext {
                index: layer.index,
                digest: &layer.digest,
                cancel,
            };
            walk_layer(blob, &context, limits, &mut walk, &mut visit).map_err(|failure| {
                if cancel.is_cancelled() {
                    return Error::cancelled(&self.path);
                }
                match failure {
                    LayerFailure::Limit(error) => error,
                    LayerFailure::Stream(source) => ErrorKind::Layer {
                        path: self.path.clone(),
                        layer_index: layer.index,
                        digest: layer.digest.clone(),
                        source,
                    }
                    .into(),
                    LayerFailure::Visit { path, source } => {
                        ErrorKind::Visit { path, source }.into()
                    }
                }
            })?;
        }
        Ok(walk)
    }
}

/// Where blobs and documents are read from.
#[derive(Debug)]
enum BlobStore {
    Directory(PathBuf),
    /// Members of an uncompressed tar archive: name → (offset of the data, size).
    Archive {
        path: PathBuf,
        members: HashMap<String, (u64, u64)>,
    },
}

impl BlobStore {
    /// Indexes the members of a tar archive by reading only its headers.
    fn archive(path: &Path) -> Result<BlobStore, Error> {
        let file = File::open(path).map_err(|source| Error::io(path, source))?;
        let not_a_tar = |reason: String| -> Error {
            ErrorKind::NotAnImage {
                path: path.to_owned(),
                reason,
            }
            .into()
        };
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        let entries = archive
            .entries_with_seek()
            .map_err(|error| not_a_tar(format!("not a tar archive ({error})")))?;
        for entry in entries {
            let entry = entry.map_err(|error| not_a_tar(format!("not a tar archive ({error})")))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            // Unsafe member names are never read: documents only refer to safe ones.
            if let Ok(name) = normalize_entry(&name) {
                members.insert(name, (entry.raw_file_position(), entry.size()));
            }
        }
        if members.is_empty() {
            return Err(not_a_tar("an empty or unreadable tar archive".into()));
        }
        Ok(BlobStore::Archive {
            path: path.to_owned(),
            members,
        })
    }

    fn contains(&self, name: &str) -> bool {
        match self {
            BlobStore::Directory(dir) => dir.join(name).is_file(),
            BlobStore::Archive { members, .. } => members.contains_key(name),
        }
    }

    /// Opens a member by its normalised name.
    fn open(&self, name: &str) -> Result<Box<dyn Read>, Error> {
        match self {
            BlobStore::Directory(dir) => {
                let path = dir.join(name);
                let file = File::open(&path).map_err(|source| Error::io(path, source))?;
                Ok(Box::new(file))
            }
            BlobStore::Archive { path, members } => {
                let member_path = || path.join(name);
                let (offset, size) = *members.get(name).ok_or_else(|| {
                    Error::io(
                        member_path(),
                        std::io::Error::new(std::io::ErrorKind::NotFound, "no such member"),
                    )
                })?;
                let mut file = File::open(path).map_err(|source| Error::io(path, source))?;
                file.seek(SeekFrom::Start(offset))
                    .map_err(|source| Error::io(member_path(), source))?;
                Ok(Box::new(file.take(size)))
            }
        }
    }

    /// Reads a whole JSON document, bounded by `max_document_bytes`.
    fn read_document(&self, name: &str, limits: &Limits) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.open(name)?
            .take(limits.max_document_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::io(name, source))?;
        if bytes.len() as u64 > limits.max_document_bytes {
            return Err(Error::limit(
                name,
                format!(
                    "over max_document_bytes = {} bytes",
                    limits.max_document_bytes
                ),
            ));
        }
        Ok(bytes)
    }

    fn document<T: for<'de> Deserialize<'de>>(
        &self,
        image: &Path,
        name: &str,
        limits: &Limits,
    ) -> Result<(T, Vec<u8>), Error> {
        let bytes = self.read_document(name, limits)?;
        let document = serde_json::from_slice(&bytes)
            .map_err(|error| Error::malformed(image, name, error.to_string()))?;
        Ok((document, bytes))
    }
}

/// The path of a blob in an OCI layout: `blobs/<algorithm>/<hex>`.
fn blob_name(image: &Path, digest: &str) -> Result<String, Error> {
    match digest.split_once(':') {
        Some((algorithm, hex))
            if !algorithm.is_empty()
                && algorithm.bytes().all(|b| b.is_ascii_alphanumeric())
                && !hex.is_empty()
                && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(format!("blobs/{algorithm}/{hex}"))
        }
        _ => Err(Error::malformed(
            image,
            "digest",
            format!("{digest:?} is not an `algorithm:hex` digest"),
        )),
    }
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    platform: Option<Platform>,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
}

#[derive(Deserialize)]
struct OciIndex {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct OciManifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Deserialize, Default)]
struct ImageConfig {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    rootfs: Option<RootFsConfig>,
}

#[derive(Deserialize, Default)]
struct RootFsConfig {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// The architecture name OCI uses for the machine we run on.
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Picks the manifest for this machine's platform from an index, or the only/first one.
fn pick_manifest(manifests: Vec<Descriptor>) -> Option<Descriptor> {
    let position = manifests.iter().position(|descriptor| {
        descriptor.platform.as_ref().is_some_and(|platform| {
            platform.os == "linux" && platform.architecture == host_architecture()
        })
    });
    let mut manifests = manifests;
    match position {
        Some(position) => Some(manifests.swap_remove(position)),
        None if manifests.is_empty() => None,
        None => Some(manifests.swap_remove(0)),
    }
}

fn open_oci(
    path: &Path,
    format: ImageFormat,
    blobs: BlobStore,
    limits: &Limits,
) -> Result<Image, Error> {
    let (index, _) = blobs.document::<OciIndex>(path, "index.json", limits)?;
    let mut descriptor = pick_manifest(index.manifests)
        .ok_or_else(|| Error::malformed(path, "index.json", "lists no manifest"))?;
    let reference = descriptor
        .annotations
        .get("org.opencontainers.image.ref.name")
        .cloned();
    for _ in 0..MAX_INDEX_DEPTH {
        let name = blob_name(path, &descriptor.digest)?;
        let (manifest, _) = blobs.document::<OciManifest>(path, &name, limits)?;
        if let Some(manifests) = manifest.manifests {
            // A nested image index (multi-platform image): descend into it.
            descriptor = pick_manifest(manifests)
                .ok_or_else(|| Error::malformed(path, &name, "image index lists no manifest"))?;
            continue;
        }
        let config = manifest.config.ok_or_else(|| {
            Error::malformed(
                path,
                &name,
                format!("manifest ({}) has no config", manifest.media_type),
            )
        })?;
        let config_name = blob_name(path, &config.digest)?;
        let (image_config, config_bytes) =
            blobs.document::<ImageConfig>(path, &config_name, limits)?;
        let diff_ids = image_config.rootfs.unwrap_or_default().diff_ids;
        let layers = manifest
            .layers
            .into_iter()
            .enumerate()
            .map(|(index, layer)| {
                Ok(Layer {
                    index,
                    digest: diff_ids
                        .get(index)
                        .cloned()
                        .unwrap_or_else(|| layer.digest.clone()),
                    blob: blob_name(path, &layer.digest)?,
                    blob_digest: layer.digest,
                    media_type: layer.media_type,
                    size: layer.size,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        return Ok(Image {
            path: path.to_owned(),
            format,
            reference,
            id: sha256_id(&config_bytes),
            os: image_config.os,
            architecture: image_config.architecture,
            layers,
            blobs,
        });
    }
    Err(Error::malformed(
        path,
        "index.json",
        format!("image indexes nested deeper than {MAX_INDEX_DEPTH}"),
    ))
}

#[derive(Deserialize)]
struct DockerManifest {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn open_docker(path: &Path, blobs: BlobStore, limits: &Limits) -> Result<Image, Error> {
    let (manifests, _) = blobs.document::<Vec<DockerManifest>>(path, "manifest.json", limits)?;
    let manifest = manifests
        .into_iter()
        .next()
        .ok_or_else(|| Error::malformed(path, "manifest.json", "lists no image"))?;
    let member = |name: &str| {
        normalize_entry(name).map_err(|unsafe_path| {
            Error::malformed(
                path,
                "manifest.json",
                format!("{name:?}: {}", unsafe_path.reason()),
            )
        })
    };
    let config_name = member(&manifest.config)?;
    let (image_config, config_bytes) = blobs.document::<ImageConfig>(path, &config_name, limits)?;
    let diff_ids = image_config.rootfs.unwrap_or_default().diff_ids;
    let layers = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let blob = member(name)?;
            // Newer docker archives store layers as `blobs/sha256/<hex>`, older ones as
            // `<hex>/layer.tar`.
            let blob_digest = match blob.strip_prefix("blobs/sha256/") {
                Some(hex) => format!("sha256:{hex}"),
                None => blob.clone(),
            };
            let size = match &blobs {
                BlobStore::Archive { members, .. } => members.get(&blob).map(|(_, size)| *size),
                BlobStore::Directory(dir) => std::fs::metadata(dir.join(&blob))
                    .ok()
                    .map(|metadata| metadata.len()),
            };
            Ok(Layer {
                index,
                digest: diff_ids
                    .get(index)
                    .cloned()
                    .unwrap_or_else(|| blob_digest.clone()),
                blob_digest,
                media_type: "application/vnd.docker.image.rootfs.diff.tar".into(),
                size,
                blob,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Image {
        path: path.to_owned(),
        format: ImageFormat::DockerArchive,
        reference: manifest.repo_tags.and_then(|tags| tags.into_iter().next()),
        id: sha256_id(&config_bytes),
        os: image_config.os,
        architecture: image_config.architecture,
        layers,
        blobs,
    })
}

fn sha256_id(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
