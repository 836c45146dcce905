//! Reading a trace: open checks the header and the directory; blocks are
//! checked (checksum, then bytecheck) the first time one of their
//! invocations is asked for, so opening costs the same for any trace size.
//!
//! The file's bytes (a read-only memory map, or an aligned copy of a byte
//! vector) and the validated views into them live together in a `self_cell`
//! so `invocation()` can hand out `&ArchivedInvocation` borrowed from the
//! `Trace` without any `unsafe` here.

use std::path::Path;
use std::sync::OnceLock;

use rkyv::util::AlignedVec;

use super::directory::{ArchivedInvocationBlock, BlockRef, TraceDirectory, check_invocation};
use super::error::{TraceError, TraceErrorKind, one_line};
use super::header::{HEADER_LEN, Header, checksum};
use super::model::{ArchivedInvocation, Invocation, LostCount, Map, Program, TraceMeta};
use super::summary::TraceSummary;

/// The bytes of a trace file.
enum Storage {
    Mapped(memmap2::Mmap),
    Owned(AlignedVec),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Mapped(m) => m,
            Storage::Owned(v) => v,
        }
    }
}

/// The validated blocks, filled in on first use. A failed check is kept
/// too, so a damaged block gives the same error every time.
struct Blocks<'a> {
    bytes: &'a [u8],
    checked: Box<[OnceLock<Result<&'a ArchivedInvocationBlock, TraceErrorKind>>]>,
}

self_cell::self_cell!(
    struct TraceCell {
        owner: Storage,
        #[not_covariant]
        dependent: Blocks,
    }
);

/// An open trace file. Cheap to open; invocations are read in place.
pub struct Trace {
    name: String,
    header: Header,
    dir: TraceDirectory,
    size: u64,
    cell: TraceCell,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace")
            .field("name", &self.name)
            .field("size", &self.size)
            .field("invocations", &self.invocation_count())
            .finish()
    }
}

impl Trace {
    /// Opens and checks a trace file (memory-mapped).
    pub fn open(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let io_err = |e: std::io::Error| {
            TraceError::new(
                &name,
                TraceErrorKind::Io {
                    writing: false,
                    message: one_line(e),
                },
            )
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(io_err(std::io::Error::other("it is not a regular file")));
        }
        if meta.len() < HEADER_LEN as u64 {
            // Too small to map usefully; the header check names the problem.
            let bytes = std::fs::read(path).map_err(io_err)?;
            return Self::from_storage(name, Storage::Owned(aligned_copy(&bytes)));
        }
        let map = map_file(&file).map_err(io_err)?;
        Self::from_storage(name, Storage::Mapped(map))
    }

    /// Reads a trace from bytes in memory (same checks as `open`). The
    /// bytes are copied once into 16-aligned memory, as rkyv requires.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Trace, TraceError> {
        Self::from_bytes_named(bytes, "in-memory trace")
    }

    /// Like `from_bytes`, with the name to use in error messages.
    pub fn from_bytes_named(bytes: Vec<u8>, name: &str) -> Result<Trace, TraceError> {
        Self::from_storage(name.to_string(), Storage::Owned(aligned_copy(&bytes)))
    }

    fn from_storage(name: String, storage: Storage) -> Result<Trace, TraceError> {
        let err = |kind| TraceError::new(&name, kind);
        let bytes = storage.bytes();
        let size = bytes.len() as u64;
        let header = Header::parse(bytes).map_err(err)?;
        // Header::parse checked that the directory lies inside the file.
        let dir_bytes = &bytes[header.directory_offset as usize..][..header.directory_len as usize];
        if checksum(dir_bytes) != header.directory_checksum {
            return Err(err(TraceErrorKind::ChecksumMismatch {
                part: "the directory".into(),
            }));
        }
        let dir = match header.format_version {
            1 => super::model_v1::TraceDirectoryV1::from_archive_bytes(dir_bytes).map(Into::into),
            _ => TraceDirectory::from_archive_bytes(dir_bytes),
        }
        .map_err(|e| {
            err(TraceErrorKind::InvalidStructure {
                detail: format!("the directory is malformed ({e})"),
            })
        })?;
        dir.check(header.format_version, header.directory_offset)
            .map_err(|detail| err(TraceErrorKind::InvalidStructure { detail }))?;
        let n_blocks = dir.blocks.len();
        let cell = TraceCell::new(storage, |storage| Blocks {
            bytes: storage.bytes(),
            checked: (0..n_blocks).map(|_| OnceLock::new()).collect(),
        });
        Ok(Trace {
            name,
            header,
            dir,
            size,
            cell,
        })
    }

    /// The name used in messages: the path given to `open`, or "in-memory trace".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Format version of the file.
    pub fn format_version(&self) -> u32 {
        self.header.format_version
    }

    /// Size of the file in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.size
    }

    pub fn meta(&self) -> &TraceMeta {
        &self.dir.meta
    }

    /// Programs; a program's id is its index here.
    pub fn programs(&self) -> &[Program] {
        &self.dir.programs
    }

    /// Maps; a map's id is its index here.
    pub fn maps(&self) -> &[Map] {
        &self.dir.maps
    }

    /// Records lost per CPU (only CPUs that lost any).
    pub fn lost(&self) -> &[LostCount] {
        &self.dir.lost
    }

    /// The whole directory (definitions, block list, statistics).
    pub fn directory(&self) -> &TraceDirectory {
        &self.dir
    }

    pub fn invocation_count(&self) -> u64 {
        self.dir.invocation_count()
    }

    /// Counts and definitions for `bpfrr info`; reads no block.
    pub fn summary(&self) -> TraceSummary {
        TraceSummary::from_directory(&self.name, &self.dir, self.size)
    }

    /// Invocation `index` (0-based position in the trace), read in place.
    /// Its block is checked on first use; a damaged block is an error.
    pub fn invocation(&self, index: u64) -> Result<&ArchivedInvocation, TraceError> {
        let count = self.invocation_count();
        if index >= count {
            return Err(TraceError::new(
                &self.name,
                TraceErrorKind::InvalidInput {
                    detail: format!("there is no invocation {index}, the trace has {count}"),
                },
            ));
        }
        // Blocks are contiguous and ordered by first_index (checked at open).
        let k = self.dir.blocks.partition_point(|b| b.first_index <= index) - 1;
        let block = self.block(k)?;
        Ok(&block.invocations[(index - self.dir.blocks[k].first_index) as usize])
    }

    /// An owned copy of invocation `index`.
    pub fn invocation_owned(&self, index: u64) -> Result<Invocation, TraceError> {
        self.invocation(index).map(|i| i.to_owned_invocation())
    }

    /// All invocations in order. After an error (a damaged block) the
    /// iterator ends.
    pub fn iter_invocations(&self) -> Invocations<'_> {
        Invocations {
            trace: self,
            block: 0,
            index: 0,
            done: false,
        }
    }

    /// Checks every block now (what `invocation` would do lazily).
    pub fn verify_all(&self) -> Result<(), TraceError> {
        (0..self.dir.blocks.len()).try_for_each(|k| self.block(k).map(|_| ()))
    }

    /// The archived invocations of block `k`, checked on first use.
    fn block(&self, k: usize) -> Result<&ArchivedInvocationBlock, TraceError> {
        let block_ref = &self.dir.blocks[k];
        let programs = &self.dir.programs;
        let checked = self.cell.with_dependent(|_, blocks| {
            let slot =
                blocks.checked[k].get_or_init(|| check_block(blocks.bytes, k, block_ref, programs));
            match slot {
                Ok(b) => Ok(*b),
                Err(e) => Err(e.clone()),
            }
        });
        checked.map_err(|kind| TraceError::new(&self.name, kind))
    }
}

/// Checksum, bytecheck and reference checks of one block.
fn check_block<'a>(
    bytes: &'a [u8],
    k: usize,
    block_ref: &BlockRef,
    programs: &[Program],
) -> Result<&'a ArchivedInvocationBlock, TraceErrorKind> {
    // The directory check put every block inside the file.
    let data = &bytes[block_ref.offset as usize..][..block_ref.len as usize];
    if checksum(data) != block_ref.checksum {
        return Err(TraceErrorKind::ChecksumMismatch {
            part: format!("block {k}"),
        });
    }
    let invalid = |detail: String| TraceErrorKind::InvalidStructure {
        detail: format!("block {k}: {detail}"),
    };
    let block = rkyv::access::<ArchivedInvocationBlock, rkyv::rancor::Error>(data)
        .map_err(|e| invalid(format!("malformed ({})", one_line(e))))?;
    if block.invocations.len() as u64 != block_ref.count {
        return Err(invalid(format!(
            "holds {} invocations, the directory says {}",
            block.invocations.len(),
            block_ref.count
        )));
    }
    for inv in block.invocations.iter() {
        check_invocation(programs, inv.program.to_native(), inv.referenced_insns())
            .map_err(invalid)?;
    }
    Ok(block)
}

/// Iterator over all invocations of a trace, in order.
pub struct Invocations<'t> {
    trace: &'t Trace,
    block: usize,
    index: usize,
    done: bool,
}

impl<'t> Iterator for Invocations<'t> {
    type Item = Result<&'t ArchivedInvocation, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done && self.block < self.trace.dir.blocks.len() {
            let block = match self.trace.block(self.block) {
                Ok(b) => b,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            if let Some(inv) = block.invocations.get(self.index) {
                self.index += 1;
                return Some(Ok(inv));
            }
            self.block += 1;
            self.index = 0;
        }
        None
    }
}

fn aligned_copy(bytes: &[u8]) -> AlignedVec {
    let mut v = AlignedVec::with_capacity(bytes.len());
    v.extend_from_slice(bytes);
    v
}

/// Maps a trace file read-only. The one `unsafe` of this crate.
#[allow(unsafe_code)]
fn map_file(file: &std::fs::File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: memmap2 requires that the mapped file is not modified or
    // truncated while the map lives, which no Rust code can guarantee for a
    // file other processes may write. bpfrr itself never modifies a trace in
    // place: the writer renames a finished temporary file over the old name,
    // which leaves an existing mapping of the old file intact. The map is
    // read-only, and every byte is validated (checksums, bytecheck) before
    // it is interpreted; what remains is the risk every mmap reader accepts,
    // another process rewriting the file while it is open.
    unsafe { memmap2::Mmap::map(file) }
}
