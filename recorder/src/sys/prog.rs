//! BPF_PROG_LOAD (always with a verifier log) and BPF_OBJ_GET_INFO_BY_FD
//! for programs.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{bpf_cmd, bpf_prog_info};
use bpfrr_trace::isa::RawInsn;

use super::{SysError, bpf_call, bpf_call_fd, fill_obj_name, ptr_u64, read_obj_name, zeroed_attr};

/// `prog_flags` bits of BPF_PROG_LOAD.
pub mod prog_flags {
    pub const STRICT_ALIGNMENT: u32 = 1 << 0;
    pub const ANY_ALIGNMENT: u32 = 1 << 1;
    pub const TEST_RND_HI32: u32 = 1 << 2;
    /// Makes the verifier checkpoint states far more often (tests its pruning).
    pub const TEST_STATE_FREQ: u32 = 1 << 3;
    pub const SLEEPABLE: u32 = 1 << 4;
    pub const XDP_HAS_FRAGS: u32 = 1 << 5;
}

/// How much the verifier writes to its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLevel {
    /// 1: the failing path and the statistics; 2: every instruction's state.
    pub verbosity: u32,
    /// Adds `BPF_LOG_STATS`: verification time and each frame's stack depth.
    pub stats: bool,
}

impl LogLevel {
    /// Level 1 with statistics: small logs, enough for a rejection.
    pub const BRIEF: LogLevel = LogLevel {
        verbosity: 1,
        stats: true,
    };
    /// Level 2 with statistics: the full log the recorder stores in a trace.
    pub const FULL: LogLevel = LogLevel {
        verbosity: 2,
        stats: true,
    };

    fn bits(self) -> u32 {
        const BPF_LOG_STATS: u32 = 4;
        self.verbosity.clamp(1, 2) | if self.stats { BPF_LOG_STATS } else { 0 }
    }
}

/// A func_info or line_info table: records of `rec_size` bytes each.
#[derive(Clone, Copy, Debug)]
pub struct RecordTable<'a> {
    pub bytes: &'a [u8],
    pub rec_size: u32,
}

impl RecordTable<'_> {
    fn count(&self) -> Result<u32, SysError> {
        if self.rec_size == 0 || !self.bytes.len().is_multiple_of(self.rec_size as usize) {
            return Err(SysError::InvalidArgument(format!(
                "a {}-byte info table is not a whole number of {}-byte records",
                self.bytes.len(),
                self.rec_size
            )));
        }
        Ok((self.bytes.len() / self.rec_size as usize) as u32)
    }
}

/// Everything BPF_PROG_LOAD takes. Build with [`ProgLoad::new`] and set what
/// the program needs.
#[derive(Clone, Debug)]
pub struct ProgLoad<'a> {
    /// `enum bpf_prog_type`.
    pub prog_type: u32,
    /// `enum bpf_attach_type`, for the types that need it.
    pub expected_attach_type: Option<u32>,
    /// In-kernel BTF type id of the attach target (fentry, tp_btf, lsm...).
    pub attach_btf_id: Option<u32>,
    /// BTF object holding `attach_btf_id` (a module), or the program for freplace.
    pub attach_fd: Option<BorrowedFd<'a>>,
    pub name: &'a str,
    pub license: &'a str,
    pub kern_version: u32,
    pub insns: &'a [RawInsn],
    pub log_level: LogLevel,
    /// Bits from [`prog_flags`].
    pub prog_flags: u32,
    /// Map (and BTF) fds that `ld_imm64` with `PSEUDO_MAP_IDX*` refer to by index.
    pub fd_array: &'a [BorrowedFd<'a>],
    /// The program's BTF, needed with func_info/line_info.
    pub prog_btf: Option<BorrowedFd<'a>>,
    pub func_info: Option<RecordTable<'a>>,
    pub line_info: Option<RecordTable<'a>>,
}

impl<'a> ProgLoad<'a> {
    pub fn new(prog_type: u32, insns: &'a [RawInsn]) -> Self {
        ProgLoad {
            prog_type,
            expected_attach_type: None,
            attach_btf_id: None,
            attach_fd: None,
            name: "",
            license: "GPL",
            kern_version: 0,
            insns,
            log_level: LogLevel::BRIEF,
            prog_flags: 0,
            fd_array: &[],
            prog_btf: None,
            func_info: None,
            line_info: None,
        }
    }

    /// Loads the program. On success returns its fd and the verifier's whole
    /// log; on rejection a [`SysError::Rejected`] with errno and log.
    ///
    /// The log buffer grows until the log fits: a truncated log (ENOSPC)
    /// makes the load fail in the kernel, so the call is repeated with the
    /// size the kernel asked for. Past [`MAX_LOG_SIZE`] the program is
    /// loaded once more with level 1 and the kept log is marked truncated.
    pub fn load(&self) -> Result<LoadedProgram, SysError> {
        if self.insns.is_empty() {
            return Err(SysError::InvalidArgument(
                "the program has no instructions".to_string(),
            ));
        }
        let insn_bytes: Vec<u8> = self.insns.iter().flat_map(|i| i.to_bytes()).collect();
        let license = CString::new(self.license).map_err(|_| {
            SysError::InvalidArgument("the license string contains a NUL byte".to_string())
        })?;
        let fds: Vec<i32> = self.fd_array.iter().map(|f| f.as_raw_fd()).collect();
        let func_info_cnt = self.func_info.map(|t| t.count()).transpose()?;
        let line_info_cnt = self.line_info.map(|t| t.count()).transpose()?;

        let mut log_size: usize = if self.log_level.verbosity >= 2 {
            1 << 20
        } else {
            64 << 10
        };
        let mut level = self.log_level;
        let mut truncated_log: Option<String> = None;
        loop {
            let mut log = vec![0u8; log_size];
            let mut attr = zeroed_attr();
            // SAFETY: writing to a union field of plain integers; we only
            // ever use the BPF_PROG_LOAD member of this attr.
            let a = unsafe { &mut attr.__bindgen_anon_3 };
            a.prog_type = self.prog_type;
            a.insn_cnt = self.insns.len() as u32;
            a.insns = ptr_u64(insn_bytes.as_ptr());
            a.license = ptr_u64(license.as_ptr());
            a.log_level = level.bits();
            a.log_size = log_size as u32;
            a.log_buf = ptr_u64(log.as_mut_ptr());
            a.kern_version = self.kern_version;
            a.prog_flags = self.prog_flags;
            fill_obj_name(&mut a.prog_name, self.name);
            if let Some(t) = self.expected_attach_type {
                a.expected_attach_type = t;
            }
            if let Some(id) = self.attach_btf_id {
                a.attach_btf_id = id;
            }
            if let Some(fd) = self.attach_fd {
                a.__bindgen_anon_1.attach_btf_obj_fd = fd.as_raw_fd() as u32;
            }
            if let Some(fd) = self.prog_btf {
                a.prog_btf_fd = fd.as_raw_fd() as u32;
            }
            if let (Some(t), Some(n)) = (self.func_info, func_info_cnt) {
                a.func_info = ptr_u64(t.bytes.as_ptr());
                a.func_info_rec_size = t.rec_size;
                a.func_info_cnt = n;
            }
            if let (Some(t), Some(n)) = (self.line_info, line_info_cnt) {
                a.line_info = ptr_u64(t.bytes.as_ptr());
                a.line_info_rec_size = t.rec_size;
                a.line_info_cnt = n;
            }
            if !fds.is_empty() {
                a.fd_array = ptr_u64(fds.as_ptr());
            }

            let result = bpf_call_fd(bpf_cmd::BPF_PROG_LOAD, &mut attr);
            // SAFETY: reading back a plain integer of the member we wrote.
            let true_size = unsafe { attr.__bindgen_anon_3.log_true_size } as usize;
            let text = log_text(&log);
            match result {
                Ok(fd) => {
                    let (log, truncated) = match truncated_log {
                        Some(kept) => (kept, true),
                        None => (text, false),
                    };
                    return Ok(LoadedProgram {
                        fd,
                        log,
                        log_truncated: truncated,
                    });
                }
                Err(libc::ENOSPC) if truncated_log.is_none() => {
                    let wanted = true_size.max(log_size * 4).next_power_of_two();
                    if wanted <= MAX_LOG_SIZE {
                        log_size = wanted;
                    } else {
                        // Keep what we have (the kernel keeps the end of a
                        // rotating log) and load with a small log to get an fd.
                        truncated_log = Some(text);
                        level = LogLevel::BRIEF;
                        log_size = 1 << 20;
                    }
                }
                Err(errno) if !text.trim().is_empty() => {
                    return Err(SysError::Rejected {
                        errno,
                        log: truncated_log.unwrap_or(text),
                    });
                }
                Err(errno) => return Err(SysError::from_errno("BPF_PROG_LOAD", errno)),
            }
        }
    }
}

/// The largest verifier log bpfrr asks for (the kernel's limit is 1 GiB).
pub const MAX_LOG_SIZE: usize = 256 << 20;

fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A program the kernel accepted, with the log the verifier wrote.
#[derive(Debug)]
pub struct LoadedProgram {
    pub fd: OwnedFd,
    pub log: String,
    /// The log outgrew [`MAX_LOG_SIZE`]; `log` holds what fit.
    pub log_truncated: bool,
}

/// What the kernel tells about a loaded program (BPF_OBJ_GET_INFO_BY_FD).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgInfo {
    pub prog_type: u32,
    pub id: u32,
    pub tag: [u8; 8],
    pub name: String,
    pub gpl_compatible: bool,
    /// The instructions after the verifier's rewrites (what the JIT compiled).
    pub xlated: Vec<RawInsn>,
    /// The native code image (empty when the kernel does not give it).
    pub jited: Vec<u8>,
    /// Start address of each function's native code (main first).
    pub jited_ksyms: Vec<u64>,
    /// Length in bytes of each function's native code.
    pub jited_func_lens: Vec<u32>,
    /// Native address of each line_info record (parallel to `line_info`).
    pub jited_line_info: Vec<u64>,
    /// The kernel's line_info records (offsets into `xlated`), raw.
    pub line_info: Vec<u8>,
    pub line_info_rec_size: u32,
    /// The kernel's func_info records, raw.
    pub func_info: Vec<u8>,
    pub func_info_rec_size: u32,
    pub map_ids: Vec<u32>,
    pub btf_id: u32,
    pub verified_insns: u32,
    pub run_time_ns: u64,
    pub run_cnt: u64,
    pub attach_btf_id: u32,
    pub attach_btf_obj_id: u32,
}

impl ProgInfo {
    /// Number of functions the JIT produced (`nr_jited_ksyms`).
    pub fn nr_jited_ksyms(&self) -> usize {
        self.jited_ksyms.len()
    }
}

fn get_prog_info(fd: BorrowedFd<'_>, info: &mut bpf_prog_info) -> Result<(), SysError> {
    let mut attr = zeroed_attr();
    // SAFETY: writing plain integers into the BPF_OBJ_GET_INFO_BY_FD member.
    let a = unsafe { &mut attr.info };
    a.bpf_fd = fd.as_raw_fd() as u32;
    a.info_len = std::mem::size_of::<bpf_prog_info>() as u32;
    a.info = ptr_u64(info as *mut bpf_prog_info);
    bpf_call(bpf_cmd::BPF_OBJ_GET_INFO_BY_FD, &mut attr)
        .map(|_| ())
        .map_err(|e| SysError::from_errno("BPF_OBJ_GET_INFO_BY_FD", e))
}

/// Reads a program's info: the xlated instructions, the JIT image and its
/// tables, line and func info, map ids and counters.
pub fn prog_info(fd: impl AsFd) -> Result<ProgInfo, SysError> {
    let fd = fd.as_fd();
    // First call: the sizes of every array.
    // SAFETY: bpf_prog_info is a C struct of plain integers; zero is valid.
    let mut sizes: bpf_prog_info = unsafe { std::mem::zeroed() };
    get_prog_info(fd, &mut sizes)?;

    let mut xlated = vec![0u8; sizes.xlated_prog_len as usize];
    let mut jited = vec![0u8; sizes.jited_prog_len as usize];
    let mut ksyms = vec![0u64; sizes.nr_jited_ksyms as usize];
    let mut func_lens = vec![0u32; sizes.nr_jited_func_lens as usize];
    let mut map_ids = vec![0u32; sizes.nr_map_ids as usize];
    let line_rec = sizes.line_info_rec_size.max(16) as usize;
    let mut line_info = vec![0u8; sizes.nr_line_info as usize * line_rec];
    let jline_rec = sizes.jited_line_info_rec_size.max(8) as usize;
    let mut jited_line = vec![0u64; sizes.nr_jited_line_info as usize * jline_rec / 8];
    let func_rec = sizes.func_info_rec_size.max(8) as usize;
    let mut func_info = vec![0u8; sizes.nr_func_info as usize * func_rec];

    // Second call: the arrays themselves. Counts stay as the kernel gave
    // them; a pointer is set only for a non-empty array.
    // SAFETY: as above.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    info.xlated_prog_len = xlated.len() as u32;
    info.jited_prog_len = jited.len() as u32;
    info.nr_jited_ksyms = ksyms.len() as u32;
    info.nr_jited_func_lens = func_lens.len() as u32;
    info.nr_map_ids = map_ids.len() as u32;
    info.nr_line_info = sizes.nr_line_info;
    info.line_info_rec_size = line_rec as u32;
    info.nr_jited_line_info = sizes.nr_jited_line_info;
    info.jited_line_info_rec_size = jline_rec as u32;
    info.nr_func_info = sizes.nr_func_info;
    info.func_info_rec_size = func_rec as u32;
    let set = |v: &mut u64, p: *mut u8, len: usize| {
        if len > 0 {
            *v = ptr_u64(p);
        }
    };
    set(
        &mut info.xlated_prog_insns,
        xlated.as_mut_ptr(),
        xlated.len(),
    );
    set(&mut info.jited_prog_insns, jited.as_mut_ptr(), jited.len());
    set(
        &mut info.jited_ksyms,
        ksyms.as_mut_ptr().cast(),
        ksyms.len(),
    );
    set(
        &mut info.jited_func_lens,
        func_lens.as_mut_ptr().cast(),
        func_lens.len(),
    );
    set(
        &mut info.map_ids,
        map_ids.as_mut_ptr().cast(),
        map_ids.len(),
    );
    set(&mut info.line_info, line_info.as_mut_ptr(), line_info.len());
    set(
        &mut info.jited_line_info,
        jited_line.as_mut_ptr().cast(),
        jited_line.len(),
    );
    set(&mut info.func_info, func_info.as_mut_ptr(), func_info.len());
    get_prog_info(fd, &mut info)?;

    // The kernel writes no array (leaves the pointer alone) when it withholds
    // addresses (kptr_restrict); it then reports zero lengths on the first call.
    let xlated =
        RawInsn::parse_all(&xlated[..(info.xlated_prog_len as usize).min(xlated.len())])
            .map_err(|e| SysError::InvalidArgument(format!("the kernel's xlated program: {e}")))?;
    jited.truncate(info.jited_prog_len as usize);
    Ok(ProgInfo {
        prog_type: info.type_,
        id: info.id,
        tag: info.tag,
        name: read_obj_name(&info.name),
        gpl_compatible: info.gpl_compatible() != 0,
        xlated,
        jited,
        jited_ksyms: ksyms,
        jited_func_lens: func_lens,
        jited_line_info: jited_line,
        line_info,
        line_info_rec_size: line_rec as u32,
        func_info,
        func_info_rec_size: func_rec as u32,
        map_ids,
        btf_id: info.btf_id,
        verified_insns: info.verified_insns,
        run_time_ns: info.run_time_ns,
        run_cnt: info.run_cnt,
        attach_btf_id: info.attach_btf_id,
        attach_btf_obj_id: info.attach_btf_obj_id,
    })
}
