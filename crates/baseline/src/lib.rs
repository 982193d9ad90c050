//! palisade-baseline (being written).
