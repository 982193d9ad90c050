//! palisade-firewall (being written).
