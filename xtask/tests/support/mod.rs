//! Helpers shared by the integration tests of `cargo xtask` commands.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

pub mod cluster;
pub mod standins;
