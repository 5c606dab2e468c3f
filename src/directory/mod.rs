//! The local account directory: the source of truth for which accounts should exist and
//! how they should look, fed by Dapodik exports.

pub mod accounts;
pub mod import;
pub mod model;
pub mod naming;
