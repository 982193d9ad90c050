//! palisade-agent (being written).
