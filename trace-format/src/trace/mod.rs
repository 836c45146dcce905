//! The bpfrr trace file: one self-contained, checksummed, versioned file
//! holding everything needed to replay a recording.
//!
//! Layout (see docs/trace-format.md): a 64-byte header (`header`), then
//! invocation blocks (rkyv archives of `InvocationBlock`), then the
//! directory (an rkyv archive of `TraceDirectory`: metadata, programs, maps,
//! lost counts, the block list, statistics).
//!
//! - Write with [`TraceWriter`]: invocations stream to disk block by block.
//! - Read with [`Trace`]: `open` maps the file and checks the header and the
//!   directory; each block is checked the first time it is used, so opening
//!   does not depend on the number of invocations.
//!
//! Modules: `model` (what a trace holds), `header` (the fixed header and the
//! checksum), `directory` (directory, blocks, consistency rules), `writer`,
//! `reader`, `summary` (what `bpfrr info` prints), `error`.

// Only the memory map in `reader::map_file` may use `unsafe`.
#![deny(unsafe_code)]

pub mod directory;
pub mod error;
pub mod header;
pub mod model;
pub mod model_v1;
pub mod reader;
pub mod summary;
pub mod writer;

pub use directory::{
    ArchivedInvocationBlock, BlockRef, InvocationBlock, MAX_DISTINCT_RETVALS, ProgramStats,
    RetvalCount, TraceDirectory, TraceStats,
};
pub use error::{TraceError, TraceErrorKind};
pub use header::{FORMAT_VERSION, HEADER_LEN, Header, MAGIC};
pub use model::*;
pub use reader::{Invocations, Trace};
pub use summary::{MapSummary, ProgramSummary, TraceSummary};
pub use writer::{TraceWriter, WriterOptions};
