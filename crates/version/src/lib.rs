//! palisade-version (being written).
