//! belajar-sync keeps the Google Workspace accounts of the Akun belajar.id programme in
//! line with the local account directory fed from Dapodik. See `docs/architecture.md` for the data flow;
//! each module here is one box of it.

pub mod access;
pub mod allocator;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod directory;
pub mod display;
/// The emulator of Google's side (tests, benchmarks, `demo`): left out of a build without
/// the `emulator` feature (`cargo build --release --no-default-features`).
#[cfg(feature = "emulator")]
pub mod emulator;
pub mod executor;
pub mod google;
mod hashing;
pub mod import;
pub mod journal;
pub mod licences;
pub mod metrics;
pub mod notices;
pub mod password;
pub mod planner;
pub mod reconciler;
pub mod remote;
mod secret_file;
pub mod store;
pub mod web;
