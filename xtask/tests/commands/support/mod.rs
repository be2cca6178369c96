//! Helpers shared by the integration tests of `cargo xtask` commands.

pub mod app;
pub mod cluster;
pub mod standins;
