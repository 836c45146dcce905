//! The kernel as the reference for the VM: runs a generated case
//! ([`crate::fuzzgen::FuzzCase`]) with BPF_PROG_TEST_RUN as XDP and reads
//! back what it did: return value, output packet and every map's contents.

use std::os::fd::BorrowedFd;

use crate::fuzzgen::{FuzzCase, MAP_TYPE_ARRAY, PROG_TYPE_XDP};
use crate::sys::{BpfMap, LogLevel, MapEntries, MapSpec, ProgLoad, SysError};
use crate::testrun::{RunInput, RunKind, run};

/// What one program did in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The low 32 bits of r0 at exit.
    pub retval: u32,
    /// The packet after the run.
    pub packet: Vec<u8>,
    /// Per map (in the case's order): its entries sorted by key. Arrays
    /// list every index; hashes the keys present.
    pub maps: Vec<MapEntries>,
}

/// The kernel's verdict on a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelResult {
    Ran(Outcome),
    /// The verifier refused the program (a generator bug): errno and log.
    Rejected {
        errno: i32,
        log: String,
    },
}

/// Creates the case's maps, fills them, loads the program (verifier log
/// level 1), runs it once on the case's packet and reads everything back.
pub fn run_case(case: &FuzzCase) -> Result<KernelResult, SysError> {
    let maps = create_maps(case)?;
    let fds: Vec<BorrowedFd<'_>> = maps.iter().map(|m| m.as_fd()).collect();
    let mut load = ProgLoad::new(PROG_TYPE_XDP, &case.insns);
    load.name = "bpfrr_fuzz";
    load.log_level = LogLevel::BRIEF;
    load.fd_array = &fds;
    let prog = match load.load() {
        Ok(p) => p,
        Err(SysError::Rejected { errno, log }) => return Ok(KernelResult::Rejected { errno, log }),
        Err(e) => return Err(e),
    };
    let out = run(
        &prog.fd,
        RunKind::Xdp,
        RunInput::Packet {
            frame: &case.packet,
            ctx: None,
        },
        1,
    )?;
    Ok(KernelResult::Ran(Outcome {
        retval: out.retval,
        packet: out.data_out,
        maps: maps.iter().map(dump_map).collect::<Result<_, _>>()?,
    }))
}

fn create_maps(case: &FuzzCase) -> Result<Vec<BpfMap>, SysError> {
    let maps = case
        .maps
        .iter()
        .map(|m| {
            BpfMap::create(&MapSpec {
                map_type: m.map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                name: m.name.clone(),
                ..MapSpec::default()
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for e in &case.initial_entries {
        let map = maps.get(e.map).ok_or_else(|| {
            SysError::InvalidArgument(format!(
                "an initial entry names map {} of {}",
                e.map,
                maps.len()
            ))
        })?;
        map.update(&e.key, &e.value, 0)?;
    }
    Ok(maps)
}

/// A map's entries sorted by key (arrays: every index, zeros included).
pub fn dump_map(map: &BpfMap) -> Result<MapEntries, SysError> {
    let mut entries = if map.map_type == MAP_TYPE_ARRAY {
        let mut v = Vec::new();
        for i in 0..map.max_entries {
            let key = i.to_le_bytes().to_vec();
            if let Some(value) = map.lookup(&key)? {
                v.push((key, value));
            }
        }
        v
    } else {
        map.entries()?
    };
    entries.sort();
    Ok(entries)
}
