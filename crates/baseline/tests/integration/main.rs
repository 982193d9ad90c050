//! Integration tests of `palisade-baseline`: one test binary, one module per area.

mod loader;
mod pss_fixtures;
mod pss_versions;
mod services_live;
