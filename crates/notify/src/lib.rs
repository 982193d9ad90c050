//! palisade-notify (being written).
