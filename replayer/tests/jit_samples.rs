//! The JIT map on the committed sample traces (recorded on x86-64 with the
//! kernel's per-instruction JIT table): every instruction the kernel kept has
//! code, the ranges tile the image, and the xlated side agrees with what the
//! verifier is known to do.

use std::path::PathBuf;

use bpfrr_replayer::jit::{Fate, Precision, map_program};
use bpfrr_trace::trace::{Program, Trace};

fn sample_traces() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/traces");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpfrr"))
        .collect();
    v.sort();
    assert!(v.len() >= 4, "sample traces missing in {}", dir.display());
    v
}

fn programs() -> Vec<(String, Program)> {
    sample_traces()
        .into_iter()
        .flat_map(|path| {
            let t = Trace::open(&path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            t.programs()
                .iter()
                .map(|p| (format!("{name}:{}", p.name), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn every_kept_instruction_has_native_code_and_ranges_tile_the_image() {
    for (name, p) in programs() {
        let jit = p
            .jit
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no JIT info"));
        assert_eq!(jit.arch, "x86_64", "{name}");
        let map = map_program(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            map.precision,
            Precision::Exact,
            "{name}: per-instruction table"
        );
        let mut at = 0;
        let mut kept = 0;
        for s in &map.segments {
            assert_eq!(s.native.start, at, "{name}: gap or overlap at {s:?}");
            at = s.native.end;
            match s.fate {
                Fate::Removed => assert!(s.native.is_empty() && s.xlated.is_empty(), "{name}"),
                _ => {
                    kept += 1;
                    assert!(!s.native.is_empty(), "{name}: {s:?} has no native code");
                    assert!(!s.xlated.is_empty(), "{name}: {s:?}");
                }
            }
        }
        assert_eq!(at, jit.image.len(), "{name}: ranges end at the image's end");
        assert!(kept > 10, "{name}: {kept} kept instructions");
        // Xlated ranges tile the xlated program too.
        let mut x = 0;
        for s in map.segments.iter().filter(|s| s.fate != Fate::Removed) {
            assert_eq!(s.xlated.start, x, "{name}: {s:?}");
            x = s.xlated.end;
        }
        assert_eq!(x, jit.xlated.len(), "{name}");
        // Each slot of the original finds its instruction.
        for i in 0..p.insns.len() {
            let s = map.for_insn(i).unwrap();
            let o = s.orig.unwrap();
            assert!(
                o == i || (o + 1 == i && p.insns[o][0] == 0x18),
                "{name}: {i} -> {o}"
            );
        }
    }
}

#[test]
fn the_verifier_rewrites_context_loads_and_keeps_plain_alu() {
    let mut rewritten_ctx = 0;
    for (name, p) in programs() {
        let map = map_program(&p).unwrap();
        let jit = p.jit.as_ref().unwrap();
        for s in &map.segments {
            let orig = p.insns[s.orig.unwrap()];
            // A 64-bit `rX += imm` stays itself.
            if orig[0] == 0x07 {
                assert_eq!(s.fate, Fate::Kept, "{name}: {s:?}");
                assert_eq!(jit.xlated[s.xlated.start], orig, "{name}: {s:?}");
            }
            // `exit` stays `exit`.
            if orig[0] == 0x95 {
                assert_eq!(s.fate, Fate::Kept, "{name}: {s:?}");
            }
            if s.fate == Fate::Rewritten && orig[0] & 0x07 == 0x01 {
                rewritten_ctx += 1;
            }
        }
    }
    // XDP/skb data pointers are context loads the verifier rewrites.
    assert!(rewritten_ctx > 0, "no rewritten context load in any sample");
}
