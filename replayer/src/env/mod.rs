//! Environments that answer a program's helper calls without a recording.
//!
//! - Pure helper semantics, each in its own module: checksums ([`csum`]),
//!   the clock ([`clock`]), the random generator ([`prandom`]), printk
//!   formatting ([`printk`]), the current task ([`task`]), memory images
//!   for `probe_read` ([`memory_image`]).
//! - kfuncs carried out on the VM's memory: the numeric open-coded
//!   iterator ([`iter_num`]), packet dynptrs ([`dynptr`]).
//! - [`ModelEnv`] ([`model`]): the VM's `Env` implemented with map models
//!   and those semantics, for `bpfrr run` and tests.

pub mod clock;
pub mod csum;
pub mod dynptr;
pub mod iter_num;
pub mod memory_image;
pub mod model;
pub mod prandom;
pub mod printk;
pub mod recorded;
pub mod task;

pub use clock::Clock;
pub use memory_image::MemoryImage;
pub use model::{ModelConfig, ModelEnv, ModelEvent, RedirectTarget};
pub use prandom::Prandom;
pub use task::Task;
