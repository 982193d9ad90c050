//! palisade-rules (being written).
