//! palisade-store (being written).
