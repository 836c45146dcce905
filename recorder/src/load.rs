//! Loading an object file for recording: parse it (`trace_format::object`),
//! load its BTF, create its maps (global data .data/.rodata/.bss with their
//! initial contents, .rodata frozen), link a program, and load the ORIGINAL
//! program with the full verifier log, keeping the log, its statistics,
//! each frame's stack depth and what the kernel made of the program
//! (xlated and JIT images).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::catalog::{AttachType, MapType, ProgType};
use bpfrr_trace::object::{LinkedProgram, MapDef, ObjectError, ObjectFile};

use crate::attach::{AttachError, AttachSpec, FentryTarget};
use crate::sys::{
    BpfMap, LoadedBtf, LogLevel, MapSpec, ProgInfo, ProgLoad, RecordTable, SysError, load_btf,
    possible_cpus, prog_info,
};
use crate::verifier_stats::VerifierStats;

/// Where the kernel's own BTF lives (CO-RE and BTF attach targets).
pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

/// Test and debug hook: when set, bpfrr reads the kernel's BTF from this
/// path instead of [`VMLINUX_BTF`]. `BPFRR_VMLINUX_BTF=/nonexistent` makes
/// bpfrr behave as on a kernel built without BTF (the tests use it).
pub const VMLINUX_BTF_ENV: &str = "BPFRR_VMLINUX_BTF";

/// The kernel BTF file bpfrr reads: [`VMLINUX_BTF`], or the path in
/// [`VMLINUX_BTF_ENV`] when that is set.
pub fn vmlinux_btf_path() -> PathBuf {
    std::env::var_os(VMLINUX_BTF_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(VMLINUX_BTF), PathBuf::from)
}

/// Why an object or one of its programs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Object(#[from] ObjectError),
    #[error("map {map:?}: {source}")]
    Map {
        map: String,
        #[source]
        source: SysError,
    },
    /// The kernel rejected the original program: the log's last lines and
    /// where to look further.
    #[error(
        "the kernel's verifier rejected program {program:?} ({errno}); the end of its log:\n{tail}\n(run `bpfrr verify` on the object for the whole log)"
    )]
    Rejected {
        program: String,
        errno: String,
        tail: String,
        log: String,
    },
    #[error("program {program:?}: {source}")]
    Sys {
        program: String,
        #[source]
        source: SysError,
    },
    /// The program does not fit the attach target it is loaded for.
    #[error("{0}")]
    Retarget(AttachError),
    #[error(
        "program {program:?} has section {section:?}, which names no program type bpfrr knows; rename the section (e.g. SEC(\"xdp\"))"
    )]
    UnknownProgramType { program: String, section: String },
    #[error(
        "program {program:?} attaches to {target:?}, which the kernel's BTF ({path}) does not have"
    )]
    AttachTargetNotFound {
        program: String,
        target: String,
        path: String,
    },
    /// The program needs the kernel's BTF (CO-RE relocations, a BTF attach
    /// target) and the kernel has none.
    #[error(
        "program {program:?} {needs}, which needs the kernel's BTF, but {path} cannot be read ({reason}); run it on a kernel built with CONFIG_DEBUG_INFO_BTF=y (it provides {VMLINUX_BTF}), or build the program without CO-RE against this kernel's headers"
    )]
    KernelBtfMissing {
        program: String,
        /// What it uses BTF for: "uses CO-RE (3 relocations)".
        needs: String,
        path: String,
        reason: String,
    },
}

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub log_level: LogLevel,
    /// `prog_flags` bits (see [`crate::sys::prog_flags`]).
    pub prog_flags: u32,
    /// Apply CO-RE relocations against the running kernel's BTF (when the
    /// kernel has one). Off: keep the offsets clang compiled.
    pub core: bool,
    /// Load a tracing program for this attach target instead of the one
    /// its section names (`--fentry FUNC`, `--tp-btf NAME`): the kernel
    /// fixes the target at load time.
    pub retarget: Option<AttachSpec>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            log_level: LogLevel::FULL,
            prog_flags: 0,
            core: true,
            retarget: None,
        }
    }
}

/// A map of the object, created in the kernel.
#[derive(Debug)]
pub struct ObjectMap {
    pub def: MapDef,
    pub map: BpfMap,
}

/// An object whose BTF and maps are in the kernel, ready to load programs.
#[derive(Debug)]
pub struct LoadedObject {
    pub object: ObjectFile,
    /// The maps, in the object's map-index order.
    pub maps: Vec<ObjectMap>,
    /// The object's BTF in the kernel (None when it has none or the kernel
    /// refused it; then programs load without func/line info).
    pub btf: Option<LoadedBtf>,
    /// Why the object's BTF was not loaded, when it has BTF and it was not.
    pub btf_warning: Option<String>,
    /// The running kernel's BTF bytes (or why they cannot be read), read
    /// once when needed.
    vmlinux: Option<Result<Vec<u8>, String>>,
}

/// A program loaded from an object: its linked (original) instructions,
/// its fd, and everything the verifier and the kernel said about it.
#[derive(Debug)]
pub struct LoadedProgram {
    pub linked: LinkedProgram,
    pub fd: OwnedFd,
    /// The verifier log (level 2 by default).
    pub log: String,
    pub log_truncated: bool,
    pub stats: Option<VerifierStats>,
    pub info: ProgInfo,
    pub attach_btf_id: Option<u32>,
}

impl LoadedProgram {
    /// Each function's stack depth in bytes, main first, as the verifier
    /// computed it (empty when the log has no statistics).
    pub fn stack_depths(&self) -> &[u32] {
        self.stats.as_ref().map_or(&[], |s| &s.stack_depths)
    }
}

impl LoadedObject {
    /// Reads and prepares an object file.
    pub fn open(path: &Path) -> Result<LoadedObject, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })?;
        LoadedObject::from_bytes(&bytes)
    }

    /// Parses the object, loads its BTF and creates its maps.
    pub fn from_bytes(bytes: &[u8]) -> Result<LoadedObject, LoadError> {
        let object = ObjectFile::parse(bytes)?;
        // The fixed-up BTF (DATASEC layout filled in) is what programs carry.
        let fixed_btf = object
            .programs()
            .first()
            .and_then(|p| object.link(&p.name, &fake_fds(&object)).ok())
            .and_then(|l| l.btf);
        let (btf, btf_warning) = match fixed_btf.as_deref().or(object.btf_bytes()) {
            Some(raw) => match load_btf(raw) {
                Ok(b) => (Some(b), None),
                Err(e) => (None, Some(e.to_string())),
            },
            None => (None, None),
        };
        let maps = object
            .maps()
            .into_iter()
            .map(|def| {
                let map =
                    create_map(&def, btf.as_ref().map(|b| b.fd.as_fd())).map_err(|source| {
                        LoadError::Map {
                            map: def.name.clone(),
                            source,
                        }
                    })?;
                Ok(ObjectMap { def, map })
            })
            .collect::<Result<Vec<_>, LoadError>>()?;
        Ok(LoadedObject {
            object,
            maps,
            btf,
            btf_warning,
            vmlinux: None,
        })
    }

    /// The names of the object's programs, in file order.
    pub fn program_names(&self) -> Vec<String> {
        self.object.programs().into_iter().map(|p| p.name).collect()
    }

    /// The map fds, in map-index order (what linking resolves against).
    pub fn map_fds(&self) -> Vec<i32> {
        self.maps.iter().map(|m| m.map.fd.as_raw_fd()).collect()
    }

    /// The kernel's BTF, or why it cannot be read (a kernel without
    /// CONFIG_DEBUG_INFO_BTF has no /sys/kernel/btf/vmlinux).
    fn vmlinux_btf(&mut self) -> Result<&[u8], String> {
        let loaded = self.vmlinux.get_or_insert_with(|| {
            std::fs::read(vmlinux_btf_path()).map_err(|e| {
                // "No such file or directory", without "(os error 2)".
                let text = e.to_string();
                text.split(" (os error").next().unwrap_or(&text).to_string()
            })
        });
        match loaded {
            Ok(bytes) => Ok(bytes),
            Err(reason) => Err(reason.clone()),
        }
    }

    /// Links program `name` and loads it as written (not instrumented).
    pub fn load_program(
        &mut self,
        name: &str,
        opts: &LoadOptions,
    ) -> Result<LoadedProgram, LoadError> {
        let fds = self.map_fds();
        let mut linked = if opts.core {
            match self.vmlinux_btf().map(<[u8]>::to_vec) {
                Ok(vmlinux) => self.object.link_with_btf(name, &fds, &vmlinux)?,
                Err(reason) => {
                    let linked = self.object.link(name, &fds)?;
                    // Without the kernel's BTF, CO-RE offsets would stay as
                    // clang compiled them: refuse rather than record a
                    // program reading the wrong fields.
                    let relocations = core_relocations(&self.object, &linked);
                    if relocations > 0 {
                        return Err(LoadError::KernelBtfMissing {
                            program: linked.name.clone(),
                            needs: format!(
                                "uses CO-RE ({relocations} relocation{})",
                                if relocations == 1 { "" } else { "s" }
                            ),
                            path: vmlinux_btf_path().display().to_string(),
                            reason,
                        });
                    }
                    linked
                }
            }
        } else {
            self.object.link(name, &fds)?
        };
        if linked.prog_type == ProgType::Unspec.number() {
            return Err(LoadError::UnknownProgramType {
                program: linked.name.clone(),
                section: linked.section.clone(),
            });
        }
        if let Some(spec) = &opts.retarget {
            spec.prepare(&mut linked).map_err(LoadError::Retarget)?;
        }
        let attach_btf_id = self.attach_btf_id(&linked)?;

        let func_info: Vec<u8> = linked
            .func_info
            .iter()
            .flat_map(|f| {
                let mut rec = (f.insn as u32).to_le_bytes().to_vec();
                rec.extend(f.type_id.to_le_bytes());
                rec
            })
            .collect();
        let line_info = self.line_info_records(&linked);
        let with_btf = self.btf.is_some();

        let mut load = ProgLoad::new(linked.prog_type, &linked.insns);
        load.name = &linked.name;
        load.license = &linked.license;
        load.expected_attach_type = linked.expected_attach_type;
        load.attach_btf_id = attach_btf_id;
        load.log_level = opts.log_level;
        load.prog_flags = opts.prog_flags;
        if with_btf {
            load.prog_btf = self.btf.as_ref().map(|b| b.fd.as_fd());
            if !func_info.is_empty() {
                load.func_info = Some(RecordTable {
                    bytes: &func_info,
                    rec_size: 8,
                });
            }
            if let Some(lines) = &line_info
                && !lines.is_empty()
            {
                load.line_info = Some(RecordTable {
                    bytes: lines,
                    rec_size: 16,
                });
            }
        }
        let loaded = match load.load() {
            Ok(l) => l,
            // fentry/fexit on a kernel that refuses them: say so plainly.
            Err(e)
                if is_function_tracing(&linked)
                    && FentryTarget::explain_load_error(&e).is_some() =>
            {
                let why = FentryTarget::explain_load_error(&e).expect("checked");
                return Err(LoadError::Retarget(why));
            }
            Err(SysError::Rejected { errno, log }) => {
                return Err(LoadError::Rejected {
                    program: linked.name.clone(),
                    errno: crate::sys::errno_name(errno),
                    tail: crate::sys::log_tail(&log, 20),
                    log,
                });
            }
            Err(source) => {
                return Err(LoadError::Sys {
                    program: linked.name.clone(),
                    source,
                });
            }
        };
        let info = prog_info(&loaded.fd).map_err(|source| LoadError::Sys {
            program: linked.name.clone(),
            source,
        })?;
        Ok(LoadedProgram {
            stats: VerifierStats::parse(&loaded.log),
            fd: loaded.fd,
            log: loaded.log,
            log_truncated: loaded.log_truncated,
            info,
            attach_btf_id,
            linked,
        })
    }

    /// The kernel BTF type a tracing program attaches to (tp_btf, fentry,
    /// fexit, fmod_ret, lsm, iter), or None for other programs.
    fn attach_btf_id(&mut self, linked: &LinkedProgram) -> Result<Option<u32>, LoadError> {
        let prog_type = ProgType::from_number(linked.prog_type);
        let attach = linked
            .expected_attach_type
            .and_then(AttachType::from_number);
        let (kind, target) = match (prog_type, attach) {
            (Some(ProgType::Tracing), Some(AttachType::TraceRawTp)) => (
                BtfKind::Typedef,
                format!("btf_trace_{}", linked.attach_point),
            ),
            (Some(ProgType::Tracing), Some(AttachType::TraceIter)) => {
                (BtfKind::Func, format!("bpf_iter_{}", linked.attach_point))
            }
            (Some(ProgType::Tracing), _) => (BtfKind::Func, linked.attach_point.clone()),
            (Some(ProgType::Lsm), _) => (BtfKind::Func, format!("bpf_lsm_{}", linked.attach_point)),
            _ => return Ok(None),
        };
        let path = vmlinux_btf_path().display().to_string();
        let not_found = || LoadError::AttachTargetNotFound {
            program: linked.name.clone(),
            target: target.clone(),
            path: path.clone(),
        };
        let bytes = self
            .vmlinux_btf()
            .map_err(|reason| LoadError::KernelBtfMissing {
                program: linked.name.clone(),
                needs: format!("attaches to the kernel function or type {target:?}"),
                path: path.clone(),
                reason,
            })?;
        let btf = Btf::parse(bytes).map_err(|_| not_found())?;
        btf.find_by_name(kind, &target)
            .map(Some)
            .ok_or_else(not_found)
    }

    /// `bpf_line_info` records (insn_off, file_name_off, line_off,
    /// line << 10 | col), with string offsets found in the loaded BTF's
    /// string section. None when the object has no BTF.
    fn line_info_records(&self, linked: &LinkedProgram) -> Option<Vec<u8>> {
        let strings = BtfStrings::new(linked.btf.as_deref()?)?;
        let mut out = Vec::with_capacity(linked.line_info.len() * 16);
        for l in &linked.line_info {
            let file = strings.offset_of(&l.file)?;
            let text = strings.offset_of(&l.text)?;
            out.extend((l.insn as u32).to_le_bytes());
            out.extend(file.to_le_bytes());
            out.extend(text.to_le_bytes());
            out.extend(((l.line << 10) | (l.col & 0x3ff)).to_le_bytes());
        }
        Some(out)
    }
}

/// fentry, fexit and fmod_ret programs (BPF trampoline).
fn is_function_tracing(linked: &LinkedProgram) -> bool {
    ProgType::from_number(linked.prog_type) == Some(ProgType::Tracing)
        && matches!(
            linked
                .expected_attach_type
                .and_then(AttachType::from_number),
            Some(AttachType::TraceFentry | AttachType::TraceFexit | AttachType::ModifyReturn)
        )
}

/// Map indices standing in for fds: enough to link (for the BTF) before
/// the maps exist.
fn fake_fds(object: &ObjectFile) -> Vec<i32> {
    (0..object.maps().len() as i32).collect()
}

/// Creates one of the object's maps, with its BTF types when the kernel
/// takes them, and stores global data's initial contents (freezing .rodata).
fn create_map(def: &MapDef, btf: Option<BorrowedFd<'_>>) -> Result<BpfMap, SysError> {
    let map_type = MapType::from_number(def.map_type);
    let mut spec = MapSpec {
        map_type: def.map_type,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        map_flags: def.flags,
        name: def.name.clone(),
        ..MapSpec::default()
    };
    if map_type == Some(MapType::PerfEventArray) && spec.max_entries == 0 {
        spec.max_entries = possible_cpus() as u32;
    }
    // Maps whose values are fds or raw buffers take no value type.
    let typed = !matches!(
        map_type,
        Some(
            MapType::PerfEventArray
                | MapType::Ringbuf
                | MapType::UserRingbuf
                | MapType::ProgArray
                | MapType::ArrayOfMaps
                | MapType::HashOfMaps
        )
    );
    let map = match btf {
        Some(fd) if typed && def.btf_value_type_id != 0 => {
            let with_btf = MapSpec {
                btf: Some((fd.as_raw_fd(), def.btf_key_type_id, def.btf_value_type_id)),
                ..spec.clone()
            };
            // Like libbpf: a map the kernel will not type is created untyped.
            BpfMap::create(&with_btf).or_else(|_| BpfMap::create(&spec))?
        }
        _ => BpfMap::create(&spec)?,
    };
    if let Some(data) = &def.initial_data {
        let mut value = data.clone();
        value.resize(map.value_buffer_len(), 0);
        map.update(&0u32.to_le_bytes(), &value, 0)?;
        if def.read_only {
            map.freeze()?;
        }
    }
    Ok(map)
}

/// How many CO-RE relocations (`.BTF.ext` core_relo records) apply to a
/// linked program: those of its own section, and those of `.text` when it
/// calls subprograms (which live there). 0 when the object has no
/// `.BTF.ext` or it cannot be read (then linking has already said so).
fn core_relocations(object: &ObjectFile, linked: &LinkedProgram) -> usize {
    let (Some(btf), Some(ext)) = (object.btf_bytes(), object.btf_ext_bytes()) else {
        return 0;
    };
    let Some(strings) = BtfStrings::new(btf) else {
        return 0;
    };
    let uses_text = linked.functions.len() > 1;
    core_relocation_groups(ext)
        .into_iter()
        .filter_map(|(name_off, n)| Some((strings.at(name_off)?, n)))
        .filter(|(section, _)| *section == linked.section || (uses_text && *section == ".text"))
        .map(|(_, n)| n as usize)
        .sum()
}

/// The core_relo groups of a raw `.BTF.ext`: (section name offset in the
/// BTF strings, number of records). Stops at the first malformed group.
fn core_relocation_groups(ext: &[u8]) -> Vec<(u32, u32)> {
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            ext.get(o..o.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let mut groups = Vec::new();
    if ext.get(0..2) != Some(&[0x9f, 0xeb][..]) {
        return groups;
    }
    let Some(hdr_len) = u32_at(4).map(|h| h as usize) else {
        return groups;
    };
    // Older headers (24 bytes) have no core_relo section.
    let (Some(off), Some(len)) = (u32_at(24), u32_at(28)) else {
        return groups;
    };
    if hdr_len < 32 || len == 0 {
        return groups;
    }
    let Some(start) = hdr_len.checked_add(off as usize) else {
        return groups;
    };
    let end = start.saturating_add(len as usize).min(ext.len());
    let Some(rec_size) = u32_at(start).map(|r| r as usize) else {
        return groups;
    };
    let mut at = start + 4;
    while at + 8 <= end {
        let (Some(name), Some(n)) = (u32_at(at), u32_at(at + 4)) else {
            break;
        };
        let Some(next) = (n as usize)
            .checked_mul(rec_size)
            .and_then(|b| b.checked_add(at + 8))
            .filter(|next| *next <= end)
        else {
            break;
        };
        groups.push((name, n));
        at = next;
    }
    groups
}

/// The string section of a raw BTF blob, for finding a string's offset.
struct BtfStrings<'a> {
    strings: &'a [u8],
}

impl<'a> BtfStrings<'a> {
    fn new(btf: &'a [u8]) -> Option<BtfStrings<'a>> {
        let u32_at = |o: usize| -> Option<u32> {
            Some(u32::from_le_bytes(btf.get(o..o + 4)?.try_into().ok()?))
        };
        if btf.get(0..2)? != [0x9f, 0xeb] {
            return None;
        }
        let hdr_len = u32_at(4)? as usize;
        let str_off = u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let start = hdr_len.checked_add(str_off)?;
        Some(BtfStrings {
            strings: btf.get(start..start.checked_add(str_len)?)?,
        })
    }

    /// The NUL-terminated string at `offset`.
    fn at(&self, offset: u32) -> Option<&'a str> {
        let rest = self.strings.get(offset as usize..)?;
        let end = rest.iter().position(|b| *b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// The offset of a NUL-terminated string equal to `s` (0 for "").
    fn offset_of(&self, s: &str) -> Option<u32> {
        if s.is_empty() {
            return Some(0);
        }
        let needle: Vec<u8> = s.bytes().chain(std::iter::once(0)).collect();
        let mut start = 0;
        for (i, b) in self.strings.iter().enumerate() {
            if *b == 0 {
                if self.strings[start..=i] == needle[..] {
                    return Some(start as u32);
                }
                start = i + 1;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn btf_with_strings(strings: &[u8]) -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        b.extend(24u32.to_le_bytes()); // hdr_len
        b.extend(0u32.to_le_bytes()); // type_off
        b.extend(0u32.to_le_bytes()); // type_len
        b.extend(0u32.to_le_bytes()); // str_off
        b.extend((strings.len() as u32).to_le_bytes());
        b.extend(strings);
        b
    }

    #[test]
    fn string_offsets() {
        let raw = btf_with_strings(b"\0main\0x.c\0int a = 1;\0");
        let s = BtfStrings::new(&raw).unwrap();
        assert_eq!(s.offset_of(""), Some(0));
        assert_eq!(s.offset_of("main"), Some(1));
        assert_eq!(s.offset_of("x.c"), Some(6));
        assert_eq!(s.offset_of("int a = 1;"), Some(10));
        assert_eq!(s.offset_of("ain"), None);
        assert_eq!(s.at(6), Some("x.c"));
        assert_eq!(s.at(0), Some(""));
        assert_eq!(s.at(999), None);
        assert!(BtfStrings::new(b"nope").is_none());
    }

    /// A `.BTF.ext` with no func/line info and the given core_relo groups
    /// (section name offset, records of 16 bytes each).
    fn btf_ext_with_core(groups: &[(u32, u32)]) -> Vec<u8> {
        let mut core = 16u32.to_le_bytes().to_vec();
        for (name, n) in groups {
            core.extend(name.to_le_bytes());
            core.extend(n.to_le_bytes());
            core.extend(vec![0u8; *n as usize * 16]);
        }
        let mut b = vec![0x9f, 0xeb, 1, 0];
        b.extend(32u32.to_le_bytes()); // hdr_len
        b.extend([0u32, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes())); // func, line
        b.extend(0u32.to_le_bytes()); // core_relo_off
        b.extend((core.len() as u32).to_le_bytes());
        b.extend(core);
        b
    }

    #[test]
    fn core_relocation_groups_are_counted() {
        let ext = btf_ext_with_core(&[(1, 3), (7, 1)]);
        assert_eq!(core_relocation_groups(&ext), vec![(1, 3), (7, 1)]);
        // A header without core_relo (24 bytes), garbage, and a group whose
        // records run past the end give nothing (and never panic).
        let mut old = ext[..24].to_vec();
        old[4..8].copy_from_slice(&24u32.to_le_bytes());
        assert!(core_relocation_groups(&old).is_empty());
        assert!(core_relocation_groups(b"junk").is_empty());
        let cut = &ext[..ext.len() - 1];
        assert_eq!(core_relocation_groups(cut), vec![(1, 3)]);
    }

    #[test]
    fn the_samples_have_no_core_relocations() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples");
        for sample in ["xdp_fw", "tc_rewrite", "sock_filter", "tp_syscalls"] {
            let bytes = std::fs::read(dir.join(format!("{sample}.bpf.o"))).unwrap();
            let object = ObjectFile::parse(&bytes).unwrap();
            let ext = object.btf_ext_bytes().expect(".BTF.ext");
            assert!(core_relocation_groups(ext).is_empty(), "{sample}");
        }
    }
}
