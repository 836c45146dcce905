//! See Cargo.toml description.
pub mod maps;
