//! `--uprobe PATH:SYMBOL[+OFFSET]`: a uprobe (kprobe-type) program on a
//! function of a user-space binary or library, for every process that runs
//! it. The symbol's file offset is resolved from the ELF file (`.symtab`,
//! then `.dynsym`, through the loadable segment holding it); the probe is a
//! perf event of the kernel's dynamic `uprobe` PMU, linked to the program
//! with BPF_LINK_CREATE (BPF_PERF_EVENT).

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use bpfrr_trace::catalog::{AttachType, ProgType};
use bpfrr_trace::object::LinkedProgram;
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

use super::{AttachError, AttachProgram, Link, expect_prog_type, kernel_error, split_target};
use crate::sys::{LinkCreate, PerfEventKind, perf_event_enable, perf_event_open};

/// Where the kernel describes its dynamic uprobe PMU.
const UPROBE_PMU: &str = "/sys/bus/event_source/devices/uprobe";

/// A function in a binary: `PATH:SYMBOL`, `PATH:SYMBOL+OFFSET` or
/// `PATH:0xFILEOFFSET`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UprobeTarget {
    pub path: PathBuf,
    /// None: `offset` is a file offset given directly.
    pub symbol: Option<String>,
    /// Added to the symbol's offset (or the file offset itself).
    pub offset: u64,
    /// A return probe (uretprobe) instead of an entry probe.
    pub retprobe: bool,
}

impl UprobeTarget {
    /// Parses `PATH:SYMBOL`, `PATH:SYMBOL+OFFSET` or `PATH:0xOFFSET`. A
    /// PATH without `/` is looked up in `$PATH` when attaching.
    pub fn parse(text: &str) -> Result<UprobeTarget, AttachError> {
        let (path, what) = split_target(text, "--uprobe", "PATH:SYMBOL")?;
        let bad_number = |n: &str| {
            AttachError::BadTarget(format!(
                "--uprobe {text:?}: {n:?} is not a number (write 0x1f or 31)"
            ))
        };
        let (symbol, offset) = if let Some(hex) = what.strip_prefix("0x") {
            (
                None,
                u64::from_str_radix(hex, 16).map_err(|_| bad_number(what))?,
            )
        } else {
            match what.split_once('+') {
                Some((sym, off)) => (Some(sym), parse_number(off).ok_or_else(|| bad_number(off))?),
                None => (Some(what), 0),
            }
        };
        if let Some(sym) = symbol
            && (sym.is_empty() || sym.contains(char::is_whitespace))
        {
            return Err(AttachError::BadTarget(format!(
                "--uprobe {text:?}: {sym:?} is not a symbol name"
            )));
        }
        Ok(UprobeTarget {
            path: PathBuf::from(path),
            symbol: symbol.map(str::to_string),
            offset,
            retprobe: false,
        })
    }

    /// kprobe-type programs only (uprobes are kprobe programs).
    pub fn prepare(&self, program: &mut LinkedProgram) -> Result<(), AttachError> {
        expect_prog_type(&program.name, program.prog_type, &[ProgType::Kprobe], self)
    }

    /// Resolves the probe's file, its offset, and attaches.
    pub fn attach(&self, program: AttachProgram<'_>) -> Result<Link, AttachError> {
        expect_prog_type(program.name, program.prog_type, &[ProgType::Kprobe], self)?;
        let path = self.resolve_path()?;
        let offset = self.file_offset(&path)?;
        let pmu_type = read_pmu_type()?;
        let retprobe_bit = if self.retprobe {
            Some(read_retprobe_bit()?)
        } else {
            None
        };
        let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            AttachError::BadTarget(format!("{} contains a NUL byte", path.display()))
        })?;
        let event = perf_event_open(&PerfEventKind::Uprobe {
            pmu_type,
            path: &c_path,
            offset,
            retprobe_bit,
        })
        .map_err(kernel_error(self))?;
        let link = LinkCreate {
            prog: program.fd,
            target: event.as_raw_fd() as u32,
            attach_type: AttachType::PerfEvent.number(),
            flags: 0,
        }
        .create()
        .map_err(kernel_error(self))?;
        perf_event_enable(event.as_fd()).map_err(kernel_error(self))?;
        let description = format!("{self} (file offset {offset:#x})");
        Link::new(link, Some(event), description)
    }

    /// The binary's absolute path: as given when it has a `/`, else the
    /// first match in `$PATH`.
    pub fn resolve_path(&self) -> Result<PathBuf, AttachError> {
        let given = &self.path;
        let found = if given.components().count() > 1 || given.is_absolute() {
            given.is_file().then(|| given.clone())
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(given))
                    .find(|p| p.is_file())
            })
        };
        let path = found.ok_or_else(|| {
            AttachError::NotFound(format!(
                "--uprobe: there is no file {} (give the binary's path)",
                given.display()
            ))
        })?;
        path.canonicalize().map_err(|e| {
            AttachError::NotFound(format!("--uprobe: cannot resolve {}: {e}", path.display()))
        })
    }

    /// The file offset to probe in `path`.
    pub fn file_offset(&self, path: &Path) -> Result<u64, AttachError> {
        let Some(symbol) = &self.symbol else {
            return Ok(self.offset);
        };
        let data = std::fs::read(path).map_err(|e| {
            AttachError::NotFound(format!("--uprobe: cannot read {}: {e}", path.display()))
        })?;
        let base = symbol_file_offset(&data, symbol)
            .map_err(|why| AttachError::NotFound(format!("--uprobe: {}: {why}", path.display())))?;
        Ok(base + self.offset)
    }
}

/// The file offset of function `symbol` in an ELF image: its address
/// translated through the loadable segment that holds it.
pub fn symbol_file_offset(elf: &[u8], symbol: &str) -> Result<u64, String> {
    let file = object::File::parse(elf).map_err(|e| format!("not an ELF file ({e})"))?;
    let address = file
        .symbols()
        .chain(file.dynamic_symbols())
        .find(|s| {
            s.name() == Ok(symbol)
                && s.is_definition()
                && matches!(s.kind(), SymbolKind::Text | SymbolKind::Unknown)
                && s.address() != 0
        })
        .map(|s| s.address())
        .ok_or_else(|| {
            format!(
                "no function named {symbol:?} (list them with `nm -D` or `nm`; a stripped binary needs PATH:0xOFFSET)"
            )
        })?;
    file.segments()
        .find_map(|seg| {
            let (file_off, file_size) = seg.file_range();
            let start = seg.address();
            (address >= start && address < start + file_size).then(|| address - start + file_off)
        })
        .ok_or_else(|| {
            format!("function {symbol:?} at {address:#x} is in no loadable segment of the file")
        })
}

fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The perf type number of the kernel's uprobe PMU.
fn read_pmu_type() -> Result<u32, AttachError> {
    let path = format!("{UPROBE_PMU}/type");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| {
            AttachError::Restricted(format!(
                "this kernel has no uprobe PMU ({path} is missing): it needs CONFIG_UPROBE_EVENTS"
            ))
        })
}

/// The config bit the uprobe PMU reads as "return probe" (`config:0`).
fn read_retprobe_bit() -> Result<u32, AttachError> {
    let path = format!("{UPROBE_PMU}/format/retprobe");
    std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| t.trim().strip_prefix("config:")?.parse().ok())
        .ok_or_else(|| {
            AttachError::Restricted(format!(
                "the uprobe PMU does not say how to ask for a return probe ({path})"
            ))
        })
}

impl fmt::Display for UprobeTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.retprobe { "uretprobe" } else { "uprobe" };
        match (&self.symbol, self.offset) {
            (Some(s), 0) => write!(f, "{kind} {}:{s}", self.path.display()),
            (Some(s), o) => write!(f, "{kind} {}:{s}+{o:#x}", self.path.display()),
            (None, o) => write!(f, "{kind} {}:{o:#x}", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let t = UprobeTarget::parse("/usr/bin/bash:readline").unwrap();
        assert_eq!(t.path, PathBuf::from("/usr/bin/bash"));
        assert_eq!(t.symbol.as_deref(), Some("readline"));
        assert_eq!(t.offset, 0);
        let t = UprobeTarget::parse("./a.out:main+0x10").unwrap();
        assert_eq!((t.symbol.as_deref(), t.offset), (Some("main"), 16));
        let t = UprobeTarget::parse("lib.so:0x1234").unwrap();
        assert_eq!((t.symbol.as_deref(), t.offset), (None, 0x1234));
        assert_eq!(t.to_string(), "uprobe lib.so:0x1234");
    }

    #[test]
    fn rejects_malformed_targets() {
        assert!(UprobeTarget::parse("/bin/true").is_err());
        let e = UprobeTarget::parse("/bin/true:main+zz")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "--uprobe \"/bin/true:main+zz\": \"zz\" is not a number (write 0x1f or 31)"
        );
        assert!(UprobeTarget::parse("/bin/true:0xg").is_err());
        assert!(UprobeTarget::parse("/bin/true:+4").is_err());
    }

    /// A function of the test binary itself, at a known place in memory.
    #[inline(never)]
    #[unsafe(no_mangle)]
    pub extern "C" fn bpfrr_uprobe_offset_probe(x: u64) -> u64 {
        x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17)
    }

    /// The file offset of an address of this process, from the mapping
    /// that holds it in /proc/self/maps (what the kernel's uprobe uses).
    fn mapped_file_offset(addr: u64) -> u64 {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let mut f = line.split_whitespace();
            let (range, offset) = (f.next().unwrap(), f.nth(1).unwrap());
            let (start, end) = range.split_once('-').unwrap();
            let start = u64::from_str_radix(start, 16).unwrap();
            let end = u64::from_str_radix(end, 16).unwrap();
            if (start..end).contains(&addr) {
                return addr - start + u64::from_str_radix(offset, 16).unwrap();
            }
        }
        panic!("{addr:#x} is in no mapping");
    }

    #[test]
    fn resolves_a_symbol_of_the_running_binary() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        let off = symbol_file_offset(&data, "bpfrr_uprobe_offset_probe").unwrap();
        let addr = bpfrr_uprobe_offset_probe as *const () as usize as u64;
        assert_eq!(off, mapped_file_offset(addr));
        assert_eq!(bpfrr_uprobe_offset_probe(0), 0);

        let e = symbol_file_offset(&data, "no_such_function_bpfrr").unwrap_err();
        assert!(e.contains("no function named"), "{e}");
        let e = symbol_file_offset(b"not an elf", "main").unwrap_err();
        assert!(e.starts_with("not an ELF file"), "{e}");
    }

    #[test]
    fn paths_resolve_through_path() {
        let t = UprobeTarget::parse("sh:main").unwrap();
        let p = t.resolve_path().unwrap();
        assert!(p.is_absolute(), "{}", p.display());
        let t = UprobeTarget::parse("/nonexistent/bpfrr:main").unwrap();
        let e = t.resolve_path().unwrap_err().to_string();
        assert!(e.contains("there is no file /nonexistent/bpfrr"), "{e}");
    }
}
