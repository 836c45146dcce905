//! The VM against the kernel: random programs the verifier accepts run
//! through BPF_PROG_TEST_RUN (XDP) and through the replayer's machine with
//! the model environment, on the same packet and initial maps; return
//! value, output packet and every map's contents must be identical.
//!
//! - `BPFRR_DIFF_COUNT` (default 2000) programs from `BPFRR_DIFF_SEED`
//!   (default 0) on; e.g. `BPFRR_DIFF_COUNT=100000 BPFRR_DIFF_SEED=7 cargo
//!   test -p bpfrr-recorder --release --test differential` for a long run.
//! - Every case in `tests/regressions/*.json` runs first. A mismatch found
//!   by the random run is written there as a new file (program hex, packet,
//!   initial maps, both results), so it is kept once committed.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};

use bpfrr_recorder::fuzzgen::{FuzzCase, FuzzMap, GenConfig, MapEntry, fuzz_maps, generate};
use bpfrr_recorder::kernel_oracle::{KernelResult, Outcome, run_case};
use bpfrr_recorder::sys::MapEntries;
use bpfrr_replayer::env::{ModelConfig, ModelEnv};
use bpfrr_replayer::maps::{Map, MapDef, MapType};
use bpfrr_replayer::vm::{Context, Machine, Program, XdpMd};
use bpfrr_trace::isa::RawInsn;
use serde::{Deserialize, Serialize};

/// Runs a case in the VM with the model environment.
fn run_in_vm(case: &FuzzCase) -> Result<Outcome, String> {
    let program = Program::from_bytes(&case.program_bytes()).map_err(|e| e.to_string())?;
    let mut maps = Vec::new();
    for m in &case.maps {
        let map_type = MapType::from_number(m.map_type).ok_or("unknown map type")?;
        let def = MapDef::new(&m.name, map_type, m.key_size, m.value_size, m.max_entries);
        maps.push(Map::new(def, 1).map_err(|e| e.to_string())?);
    }
    for e in &case.initial_entries {
        maps[e.map]
            .seed(&e.key, &e.value)
            .map_err(|err| err.to_string())?;
    }
    let mut env = ModelEnv::new(maps, ModelConfig::default());
    let mut machine = Machine::new(program);
    let ctx = Context::xdp(&case.packet, &[], XdpMd::default());
    let r0 = env
        .run(&mut machine, 0, &ctx)
        .map_err(|f| format!("fault: {f}"))?;
    let packet = machine
        .memory()
        .packet_data()
        .ok_or("no packet after the run")?
        .to_vec();
    let mut dumps = Vec::new();
    for (i, spec) in case.maps.iter().enumerate() {
        dumps.push(dump_model(&mut env.maps_mut()[i], spec)?);
    }
    Ok(Outcome {
        retval: r0 as u32,
        packet,
        maps: dumps,
    })
}

/// A model map in the kernel dump's form: arrays list every index
/// (zeros included), hashes their keys; sorted by key bytes.
fn dump_model(map: &mut Map, spec: &FuzzMap) -> Result<MapEntries, String> {
    let mut out = Vec::new();
    if spec.map_type == bpfrr_recorder::fuzzgen::MAP_TYPE_ARRAY {
        for i in 0..spec.max_entries {
            let key = i.to_le_bytes().to_vec();
            let cell = map.lookup(&key, 0).map_err(|e| e.to_string())?;
            let value = cell.map_or(vec![0; spec.value_size as usize], |c| c.bytes().clone());
            out.push((key, value));
        }
    } else {
        for (key, values) in map.entries() {
            out.push((key, values.into_iter().next().unwrap_or_default()));
        }
    }
    out.sort();
    Ok(out)
}

/// A kept mismatch: enough to rerun it in both.
#[derive(Serialize, Deserialize)]
struct Regression {
    seed: u64,
    /// What differed when it was found.
    note: String,
    program_hex: String,
    packet_hex: String,
    initial_entries: Vec<MapEntryHex>,
}

#[derive(Serialize, Deserialize)]
struct MapEntryHex {
    map: usize,
    key: String,
    value: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

impl Regression {
    fn from_case(case: &FuzzCase, note: String) -> Regression {
        Regression {
            seed: case.seed,
            note,
            program_hex: hex(&case.program_bytes()),
            packet_hex: hex(&case.packet),
            initial_entries: case
                .initial_entries
                .iter()
                .map(|e| MapEntryHex {
                    map: e.map,
                    key: hex(&e.key),
                    value: hex(&e.value),
                })
                .collect(),
        }
    }

    fn to_case(&self) -> FuzzCase {
        FuzzCase {
            seed: self.seed,
            insns: RawInsn::parse_all(&unhex(&self.program_hex)).expect("whole instructions"),
            maps: fuzz_maps(),
            initial_entries: self
                .initial_entries
                .iter()
                .map(|e| MapEntry {
                    map: e.map,
                    key: unhex(&e.key),
                    value: unhex(&e.value),
                })
                .collect(),
            packet: unhex(&self.packet_hex),
        }
    }
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions")
}

/// The first difference between kernel and VM, in words; None when equal.
fn compare(kernel: &Outcome, vm: &Result<Outcome, String>) -> Option<String> {
    let vm = match vm {
        Ok(o) => o,
        Err(e) => return Some(format!("the kernel ran it, the VM failed: {e}")),
    };
    if kernel.retval != vm.retval {
        return Some(format!(
            "return value: kernel {:#x}, VM {:#x}",
            kernel.retval, vm.retval
        ));
    }
    if kernel.packet != vm.packet {
        return Some(format!(
            "output packet: kernel {}, VM {}",
            hex(&kernel.packet),
            hex(&vm.packet)
        ));
    }
    let names = ["array", "hash", "out"];
    for (i, (k, v)) in kernel.maps.iter().zip(&vm.maps).enumerate() {
        if k != v {
            let show = |m: &MapEntries| {
                m.iter()
                    .map(|(k, v)| format!("{}={}", hex(k), hex(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            return Some(format!(
                "map {}: kernel [{}], VM [{}]",
                names.get(i).unwrap_or(&"?"),
                show(k),
                show(v)
            ));
        }
    }
    None
}

enum Verdict {
    /// Identical; the return value, to see that the programs differ.
    Same(u32),
    Rejected(String),
    Differs(String),
}

fn check_case(case: &FuzzCase) -> Verdict {
    let kernel = match run_case(case).expect("a kernel call failed") {
        KernelResult::Ran(o) => o,
        KernelResult::Rejected { log, .. } => {
            return Verdict::Rejected(bpfrr_recorder::sys::log_tail(&log, 8));
        }
    };
    match compare(&kernel, &run_in_vm(case)) {
        None => Verdict::Same(kernel.retval),
        Some(d) => Verdict::Differs(d),
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn kept_regressions_agree() {
    if !common::kernel_tests_enabled("kept_regressions_agree") {
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(regressions_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let reg: Regression =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        match check_case(&reg.to_case()) {
            Verdict::Same(_) => {}
            Verdict::Rejected(log) => {
                failures.push(format!("{}: rejected:\n{log}", path.display()))
            }
            Verdict::Differs(d) => failures.push(format!("{}: {d}", path.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn random_programs_agree_with_the_kernel() {
    if !common::kernel_tests_enabled("random_programs_agree_with_the_kernel") {
        return;
    }
    let count = env_u64("BPFRR_DIFF_COUNT", 2000);
    let first = env_u64("BPFRR_DIFF_SEED", 0);
    let cfg = GenConfig::default();
    let mut rejected = Vec::new();
    let mut differs = Vec::new();
    let mut retvals = std::collections::HashSet::new();
    for seed in first..first + count {
        let case = generate(seed, &cfg);
        match check_case(&case) {
            Verdict::Same(retval) => {
                retvals.insert(retval);
            }
            Verdict::Rejected(log) => rejected.push(format!("seed {seed}:\n{log}")),
            Verdict::Differs(d) => {
                let reg = Regression::from_case(&case, d.clone());
                let dir = regressions_dir();
                let path = dir.join(format!("seed-{seed}.json"));
                if !path.exists() {
                    let _ = std::fs::create_dir_all(&dir);
                    let _ = std::fs::write(&path, serde_json::to_string_pretty(&reg).unwrap());
                }
                differs.push(format!("seed {seed}: {d} (kept in {})", path.display()));
            }
        }
    }
    eprintln!(
        "differential: {count} programs from seed {first}: {} identical, {} different, {} rejected by the verifier",
        count as usize - differs.len() - rejected.len(),
        differs.len(),
        rejected.len()
    );
    // The programs compute different things (not all `return 0`).
    assert!(
        retvals.len() as u64 >= count / 10,
        "only {} distinct return values in {count} programs",
        retvals.len()
    );
    assert!(
        rejected.is_empty(),
        "the generator made {} programs the verifier rejects (a generator bug):\n{}",
        rejected.len(),
        rejected
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        differs.is_empty(),
        "{} of {count} programs differ between kernel and VM:\n{}",
        differs.len(),
        differs
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn comparison_sees_every_part_of_the_result() {
    if !common::kernel_tests_enabled("comparison_sees_every_part_of_the_result") {
        return;
    }
    let case = generate(3, &GenConfig::default());
    let KernelResult::Ran(kernel) = run_case(&case).unwrap() else {
        panic!("seed 3 rejected");
    };
    let vm = run_in_vm(&case).unwrap();
    assert_eq!(compare(&kernel, &Ok(vm.clone())), None);
    // The VM on a different packet: the output packet differs.
    let mut other = case.clone();
    other.packet.push(0xaa);
    let d = compare(&kernel, &run_in_vm(&other)).expect("a difference");
    assert!(d.starts_with("output packet"), "{d}");
    let mut changed = vm.clone();
    changed.retval ^= 1;
    assert!(
        compare(&kernel, &Ok(changed))
            .unwrap()
            .starts_with("return value")
    );
    let mut changed = vm.clone();
    changed.maps[2][0].1[0] ^= 1;
    assert!(
        compare(&kernel, &Ok(changed))
            .unwrap()
            .starts_with("map out")
    );
    let d = compare(&kernel, &Err("fault".into())).unwrap();
    assert!(d.contains("the VM failed"), "{d}");
}
