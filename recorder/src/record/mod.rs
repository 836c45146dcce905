//! Recording: load, instrument, drive, drain, assemble, write, check.

pub mod driver;

pub use driver::{CaptureHints, Driver, DriverError, DriverTarget, Step};
