//! See Cargo.toml description.
pub mod edit;
pub mod env;
pub mod expr;
pub mod jit;
pub mod limits;
pub mod maps;
pub mod replay;
pub mod session;
pub mod verifier;
pub mod vm;
