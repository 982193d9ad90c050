//! palisade-event (being written).
