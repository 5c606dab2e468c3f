//! The local account directory: the source of truth for which accounts should exist and
//! how they should look. Fed by Dapodik exports through [`crate::import`].

pub mod accounts;
pub mod model;
pub mod naming;
