//! palisade-model (being written).
