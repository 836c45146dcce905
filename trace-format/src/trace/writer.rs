//! Writing a trace: invocations stream to disk block by block.
//!
//! Memory stays bounded: the writer holds at most one block's worth of
//! invocations (see `WriterOptions`), the program and map definitions, and
//! one small `BlockRef` per block written. Everything goes to
//! `<path>.tmp-<pid>-<n>` in the same directory; `finish` writes the
//! directory and the header, syncs, and renames, so an interrupted recording
//! never leaves a file that looks like a valid trace.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::directory::{
    BlockRef, InvocationBlock, MAX_DISTINCT_RETVALS, ProgramStats, RetvalCount, TraceDirectory,
    TraceStats, check_invocation,
};
use super::error::{TraceError, TraceErrorKind, one_line};
use super::header::{ARCHIVE_ALIGN, FORMAT_VERSION, HEADER_LEN, Header, align_up, checksum};
use super::model::{Invocation, LostCount, Map, MapSnapshot, Program, SnapshotTime, TraceMeta};
use super::summary::TraceSummary;

/// When the writer cuts a block: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Estimated archived bytes per block (`Invocation::approx_archived_size`).
    pub block_bytes: usize,
    /// Invocations per block.
    pub block_invocations: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            block_bytes: 1 << 20,
            block_invocations: 4096,
        }
    }
}

/// Streams a trace to disk. Create, `push` invocations, then `finish`.
/// Dropping it without `finish` deletes the temporary file.
pub struct TraceWriter {
    final_path: PathBuf,
    tmp_path: PathBuf,
    file: Option<BufWriter<File>>,
    /// Bytes written so far (the next block's offset before alignment).
    pos: u64,
    dir: TraceDirectory,
    options: WriterOptions,
    pending: Vec<Invocation>,
    pending_bytes: usize,
    next_index: u64,
    retvals: Vec<BTreeMap<u64, u64>>,
    lost: BTreeMap<u32, u64>,
    /// Set after an I/O error: the temporary file is unusable.
    failed: bool,
    /// Set once the file has its final name (nothing to clean up).
    renamed: bool,
}

/// Distinguishes temporary files of writers in the same process.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TraceWriter {
    /// Starts a trace at `path` with the given definitions and default options.
    pub fn create(
        path: impl AsRef<Path>,
        meta: TraceMeta,
        programs: Vec<Program>,
        maps: Vec<Map>,
    ) -> Result<TraceWriter, TraceError> {
        Self::create_with(path, meta, programs, maps, WriterOptions::default())
    }

    /// Starts a trace at `path` with explicit block limits.
    pub fn create_with(
        path: impl AsRef<Path>,
        mut meta: TraceMeta,
        programs: Vec<Program>,
        maps: Vec<Map>,
        options: WriterOptions,
    ) -> Result<TraceWriter, TraceError> {
        let final_path = path.as_ref().to_path_buf();
        let name = final_path.display().to_string();
        TraceDirectory::check_definitions(&programs, &maps)
            .map_err(|detail| TraceError::new(&name, TraceErrorKind::InvalidInput { detail }))?;
        let mut tmp_name = final_path.as_os_str().to_owned();
        tmp_name.push(format!(
            ".tmp-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp_path = PathBuf::from(tmp_name);
        let io_err = |e: std::io::Error| {
            TraceError::new(
                &name,
                TraceErrorKind::Io {
                    writing: true,
                    message: one_line(e),
                },
            )
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(io_err)?;
        let mut file = BufWriter::with_capacity(64 * 1024, file);
        // A zero header for now: the real one is written by `finish`.
        file.write_all(&[0u8; HEADER_LEN]).map_err(io_err)?;
        meta.format_version = FORMAT_VERSION;
        let n_programs = programs.len();
        Ok(TraceWriter {
            final_path,
            tmp_path,
            file: Some(file),
            pos: HEADER_LEN as u64,
            dir: TraceDirectory {
                meta,
                programs,
                maps,
                stats: TraceStats {
                    programs: vec![ProgramStats::default(); n_programs],
                },
                ..TraceDirectory::default()
            },
            options: WriterOptions {
                block_bytes: options.block_bytes.max(1),
                block_invocations: options.block_invocations.max(1),
            },
            pending: Vec::new(),
            pending_bytes: 0,
            next_index: 0,
            retvals: vec![BTreeMap::new(); n_programs],
            lost: BTreeMap::new(),
            failed: false,
            renamed: false,
        })
    }

    /// Adds one invocation. It is written to disk when its block fills.
    pub fn push(&mut self, invocation: Invocation) -> Result<(), TraceError> {
        self.check_usable()?;
        check_invocation(
            &self.dir.programs,
            invocation.program,
            invocation.referenced_insns(),
        )
        .map_err(|detail| self.error(TraceErrorKind::InvalidInput { detail }))?;
        self.count(&invocation);
        self.pending_bytes += invocation.approx_archived_size();
        self.pending.push(invocation);
        if self.pending.len() >= self.options.block_invocations
            || self.pending_bytes >= self.options.block_bytes
        {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Adds `n` records lost on `cpu` (ring buffer full).
    pub fn add_lost(&mut self, cpu: u32, n: u64) {
        let c = self.lost.entry(cpu).or_insert(0);
        *c = c.saturating_add(n);
    }

    /// Records the contents of maps after the last invocation, as
    /// `(map id, snapshot)` pairs; each snapshot is marked `SnapshotTime::End`.
    pub fn set_end_snapshots(
        &mut self,
        snapshots: impl IntoIterator<Item = (u32, MapSnapshot)>,
    ) -> Result<(), TraceError> {
        for (map, mut snapshot) in snapshots {
            let n_maps = self.dir.maps.len();
            let Some(m) = self.dir.maps.get_mut(map as usize) else {
                return Err(self.error(TraceErrorKind::InvalidInput {
                    detail: format!(
                        "an end snapshot names map {map}, but the trace has {n_maps} maps"
                    ),
                }));
            };
            snapshot.when = SnapshotTime::End;
            m.snapshots.retain(|s| s.when != SnapshotTime::End);
            m.snapshots.push(snapshot);
        }
        Ok(())
    }

    /// Number of invocations pushed so far, written out or still buffered.
    pub fn invocation_count(&self) -> u64 {
        self.next_index + self.pending.len() as u64
    }

    /// Bytes of trace data the writer holds in memory right now: the
    /// estimated size of the invocations of the block being filled plus the
    /// file buffer. Bounded by about `block_bytes` + one invocation + 64 KiB.
    pub fn buffered_bytes(&self) -> usize {
        self.pending_bytes + self.file.as_ref().map_or(0, |f| f.buffer().len())
    }

    /// Writes the last block, the directory and the header, and moves the
    /// file to its final name. Returns the summary of what was written.
    pub fn finish(mut self) -> Result<TraceSummary, TraceError> {
        self.check_usable()?;
        self.flush_block()?;
        self.dir.lost = self
            .lost
            .iter()
            .map(|(&cpu, &count)| LostCount { cpu, count })
            .collect();
        for (s, hist) in self.dir.stats.programs.iter_mut().zip(&self.retvals) {
            s.retvals = hist
                .iter()
                .map(|(&value, &count)| RetvalCount { value, count })
                .collect();
        }
        let dir_bytes = self
            .dir
            .to_archive_bytes()
            .map_err(|detail| self.error(TraceErrorKind::InvalidInput { detail }))?;
        let directory_offset = self.pad_to_alignment()?;
        self.write(&dir_bytes)?;
        let header = Header {
            format_version: FORMAT_VERSION,
            flags: 0,
            payload_len: self.pos - HEADER_LEN as u64,
            directory_offset,
            directory_len: dir_bytes.len() as u64,
            directory_checksum: checksum(&dir_bytes),
        };
        let result = (|| {
            let mut file = self
                .file
                .take()
                .expect("usable writer has a file")
                .into_inner()
                .map_err(|e| e.into_error())?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header.to_bytes())?;
            file.sync_all()?;
            std::fs::rename(&self.tmp_path, &self.final_path)?;
            self.renamed = true;
            // Make the rename itself durable; not every platform can open a directory.
            if let Some(parent) = self.final_path.parent()
                && let Ok(d) = File::open(if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                })
            {
                let _ = d.sync_all();
            }
            Ok(())
        })();
        result.map_err(|e: std::io::Error| self.io_error(e))?;
        Ok(TraceSummary::from_directory(
            &self.final_path.display().to_string(),
            &self.dir,
            self.pos,
        ))
    }

    fn count(&mut self, invocation: &Invocation) {
        let p = invocation.program as usize;
        let s = &mut self.dir.stats.programs[p];
        s.invocations += 1;
        s.partial += u64::from(invocation.partial);
        let hist = &mut self.retvals[p];
        if let Some(c) = hist.get_mut(&invocation.retval) {
            *c += 1;
        } else if hist.len() < MAX_DISTINCT_RETVALS {
            hist.insert(invocation.retval, 1);
        } else {
            s.other_retvals += 1;
        }
    }

    /// Serializes the pending invocations as one block and writes it.
    fn flush_block(&mut self) -> Result<(), TraceError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let block = InvocationBlock {
            invocations: std::mem::take(&mut self.pending),
        };
        let bytes = rkyv::to_bytes::<rkyv::rancor::Error>(&block).map_err(|e| {
            self.error(TraceErrorKind::InvalidInput {
                detail: format!("an invocation block cannot be archived ({})", one_line(e)),
            })
        })?;
        let offset = self.pad_to_alignment()?;
        self.write(&bytes)?;
        let count = block.invocations.len() as u64;
        self.dir.blocks.push(BlockRef {
            offset,
            len: bytes.len() as u64,
            checksum: checksum(&bytes),
            first_index: self.next_index,
            count,
        });
        self.next_index += count;
        // Keep the vector's capacity for the next block.
        self.pending = block.invocations;
        self.pending.clear();
        self.pending_bytes = 0;
        Ok(())
    }

    /// Writes zero bytes up to the next aligned offset and returns it.
    fn pad_to_alignment(&mut self) -> Result<u64, TraceError> {
        let aligned = align_up(self.pos);
        const ZEROS: [u8; ARCHIVE_ALIGN as usize] = [0; ARCHIVE_ALIGN as usize];
        self.write(&ZEROS[..(aligned - self.pos) as usize])?;
        Ok(aligned)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), TraceError> {
        let file = self.file.as_mut().expect("usable writer has a file");
        if let Err(e) = file.write_all(bytes) {
            self.failed = true;
            return Err(self.io_error(e));
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn check_usable(&self) -> Result<(), TraceError> {
        if self.failed || self.file.is_none() {
            return Err(self.error(TraceErrorKind::InvalidInput {
                detail: "an earlier write failed, so the trace cannot be completed".into(),
            }));
        }
        Ok(())
    }

    fn error(&self, kind: TraceErrorKind) -> TraceError {
        TraceError::new(self.final_path.display().to_string(), kind)
    }

    fn io_error(&self, e: std::io::Error) -> TraceError {
        self.error(TraceErrorKind::Io {
            writing: true,
            message: one_line(e),
        })
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        // Not finished: remove the partial file, which was never renamed.
        if !self.renamed {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}
