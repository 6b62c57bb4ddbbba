//! Shapes shared by the tests.

pub mod sitekit;
