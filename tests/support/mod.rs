//! Helpers shared by the integration tests.

pub mod export_gen;
pub mod google;
