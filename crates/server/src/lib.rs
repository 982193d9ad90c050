//! palisade-server (being written).
