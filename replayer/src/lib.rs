//! See Cargo.toml description.
pub mod env;
pub mod maps;
pub mod replay;
pub mod vm;
