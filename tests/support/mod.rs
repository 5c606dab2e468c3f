//! Helpers shared by the integration tests.

pub mod command;
pub mod console;
pub mod crash;
pub mod daemon;
pub mod export_gen;
pub mod google;
pub mod hostile;
pub mod smtp;
