//! `bpfrr disasm --jited TRACE`: on the committed sample traces (recorded on
//! x86-64), every BPF instruction the kernel kept is followed by its native
//! instructions, addresses run contiguously over the whole image, and the
//! code has the shape the x86-64 JIT is known to give.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfrr_trace::trace::{Trace, TraceWriter};

fn bpfrr(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/traces");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bpfrr"))
        .collect();
    v.sort();
    assert!(v.len() >= 4);
    v
}

/// One BPF instruction of the listing with what follows it.
#[derive(Debug, Default)]
struct Block {
    bpf: String,
    removed: bool,
    rewritten: bool,
    /// (address, bytes, text) of the native lines.
    native: Vec<(u64, usize, String)>,
}

fn parse(listing: &str) -> Vec<Block> {
    let mut blocks: Vec<Block> = Vec::new();
    for line in listing.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if indent < 10 {
            // `   12: r1 += 0x1`
            if let Some((pc, text)) = t.split_once(": ")
                && pc.parse::<usize>().is_ok()
                && indent > 0
            {
                blocks.push(Block {
                    bpf: text.to_string(),
                    ..Block::default()
                });
            }
            continue;
        }
        let Some(b) = blocks.last_mut() else { continue };
        if t.starts_with("; removed by the verifier") {
            b.removed = true;
        } else if t.starts_with("; the verifier made it") {
            b.rewritten = true;
        } else if let Some((addr, rest)) = t.split_once(":  ")
            && let Ok(addr) = u64::from_str_radix(addr, 16)
        {
            // `48 83 c7 01   add rdi, 1`: the bytes, then the text (long
            // encodings push the text right, so split after the last byte).
            let words: Vec<&str> = rest.split_whitespace().collect();
            let n_bytes = words
                .iter()
                .take_while(|w| w.len() == 2 && u8::from_str_radix(w, 16).is_ok())
                .count();
            let text = words[n_bytes..].join(" ");
            b.native.push((addr, n_bytes, text));
        }
    }
    blocks
}

#[test]
fn every_kept_instruction_has_native_code_covering_the_image() {
    for path in traces() {
        let trace = Trace::open(&path).unwrap();
        let (code, out, err) = bpfrr(&["disasm", "--jited", path.to_str().unwrap()]);
        assert_eq!(code, 0, "{}: {err}", path.display());
        assert!(out.contains("r1=rdi"), "register legend");
        // One listing per program, in the trace's order.
        let listings: Vec<&str> = out.split("\nprogram ").collect();
        assert_eq!(listings.len(), trace.programs().len(), "{}", path.display());
        for (p, listing) in trace.programs().iter().zip(listings) {
            assert!(
                listing.contains("native code per BPF instruction"),
                "{listing}"
            );
            let image_len = p.jit.as_ref().unwrap().image.len() as u64;
            check_listing(&path, listing, image_len);
        }
        // A trace is recognised by its magic without --jited.
        let (code, same, _) = bpfrr(&["disasm", path.to_str().unwrap()]);
        assert_eq!((code, same), (0, out));
    }
}

/// Every kept instruction has native lines; addresses run from 0 to the
/// end of the image without gap or overlap.
fn check_listing(path: &Path, listing: &str, image_len: u64) {
    let blocks = parse(listing);
    assert!(blocks.len() > 10, "{}", path.display());
    let mut at = 0u64;
    for b in &blocks {
        if b.removed {
            assert!(b.native.is_empty(), "{b:?}");
            continue;
        }
        assert!(
            !b.native.is_empty(),
            "{}: {b:?} has no native code",
            path.display()
        );
        for (addr, n, text) in &b.native {
            assert_eq!(*addr, at, "{}: {b:?}", path.display());
            assert_ne!(text, "(bad)", "{b:?}");
            at += *n as u64;
        }
    }
    assert_eq!(
        at,
        image_len,
        "{}: the listing covers the image",
        path.display()
    );
}

#[test]
fn known_instructions_become_the_expected_native_code() {
    let (mut exits, mut adds, mut lookups_called, mut lookups_inlined) = (0, 0, 0, 0);
    for path in traces() {
        let (_, out, _) = bpfrr(&[
            "disasm",
            "--jited",
            "--helper-names",
            path.to_str().unwrap(),
        ]);
        for b in parse(&out) {
            let texts: Vec<&str> = b.native.iter().map(|n| n.2.as_str()).collect();
            let has = |m: &str| texts.iter().any(|t| t.split(' ').next() == Some(m));
            if b.bpf == "exit" {
                // The last exit holds the epilogue (ending in `ret` or the
                // return thunk's `jmp`); the others jump to it.
                assert!(has("ret") || has("jmp"), "{}: {b:?}", path.display());
                exits += 1;
            }
            // A 64-bit `rN += imm` is one `add` (or `sub` for a negative
            // immediate, which the JIT may pick; the samples use `add`).
            if b.bpf.starts_with('r') && b.bpf.contains(" += 0x") && !b.rewritten {
                assert!(has("add"), "{}: {b:?}", path.display());
                adds += 1;
            }
            if b.bpf == "call bpf_map_lookup_elem" {
                if b.rewritten && !has("call") {
                    // Array maps: the verifier inlines the lookup (bounds
                    // check and address arithmetic, no call).
                    assert!(has("cmp"), "{}: {b:?}", path.display());
                    lookups_inlined += 1;
                } else {
                    assert!(has("call"), "{}: {b:?}", path.display());
                    lookups_called += 1;
                }
            }
        }
    }
    assert!(exits >= 4, "{exits}");
    assert!(adds >= 4, "{adds}");
    assert!(lookups_called + lookups_inlined >= 2);
    assert!(lookups_called >= 1, "a hash map lookup stays a call");
}

#[test]
fn one_program_by_name_and_unknown_names_and_objects() {
    let path = traces()
        .into_iter()
        .find(|p| p.ends_with("xdp_fw.bpfrr"))
        .unwrap();
    let p = path.to_str().unwrap();
    let (code, out, _) = bpfrr(&["disasm", "--jited", p, "--prog", "xdp_firewall"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().filter(|l| l.starts_with("program ")).count(), 1);
    let (code, _, err) = bpfrr(&["disasm", "--jited", p, "--prog", "nope"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("has no program \"nope\"") && err.contains("xdp_firewall"),
        "{err}"
    );
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/xdp_fw.bpf.o");
    let (code, _, err) = bpfrr(&["disasm", "--jited", obj.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("is not a bpfrr trace"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_trace_without_jit_info_says_so_in_one_sentence() {
    let src = traces()
        .into_iter()
        .find(|p| p.ends_with("sock_filter.bpfrr"))
        .unwrap();
    let trace = Trace::open(&src).unwrap();
    let mut programs = trace.programs().to_vec();
    for p in &mut programs {
        p.jit = None;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("jited-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nojit.bpfrr");
    let w =
        TraceWriter::create(&path, trace.meta().clone(), programs, trace.maps().to_vec()).unwrap();
    w.finish().unwrap();
    let (code, out, err) = bpfrr(&["disasm", "--jited", path.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("has no JIT image in this trace"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
