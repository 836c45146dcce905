//! See Cargo.toml description.
pub mod maps;
pub mod vm;
