//! Opening a damaged or foreign file says in one sentence what is wrong,
//! naming the file; block damage is found lazily, on first use.

mod trace_common;

use bpfrr_trace::trace::*;
use trace_common::*;

/// Writes `bytes` to a file and opens it; returns the error and the path.
fn open_bytes(bytes: &[u8]) -> (TraceError, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.bpfrr");
    std::fs::write(&path, bytes).unwrap();
    let e = Trace::open(&path).unwrap_err();
    let text = e.to_string();
    let p = path.display().to_string();
    assert!(text.contains(&p), "message does not name the file: {text}");
    assert!(!text.contains('\n'), "message is not one line: {text}");
    // the same bytes in memory give the same problem
    let mem = Trace::from_bytes(bytes.to_vec()).unwrap_err();
    assert_eq!(mem.kind(), e.kind());
    assert_eq!(mem.file(), "in-memory trace");
    (e, p)
}

fn dir_range(file: &[u8]) -> std::ops::Range<usize> {
    let off = u64::from_le_bytes(file[24..32].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(file[32..40].try_into().unwrap()) as usize;
    off..off + len
}

#[test]
fn a_missing_file_is_named() {
    let e = Trace::open("/nonexistent/x.bpfrr").unwrap_err();
    assert!(matches!(
        e.kind(),
        TraceErrorKind::Io { writing: false, .. }
    ));
    assert!(
        e.to_string()
            .starts_with("cannot read /nonexistent/x.bpfrr: "),
        "{e}"
    );
}

#[test]
fn a_directory_is_not_a_trace_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = Trace::open(dir.path()).unwrap_err();
    assert!(matches!(e.kind(), TraceErrorKind::Io { .. }), "{e}");
}

#[test]
fn foreign_files_are_not_traces() {
    for bytes in [
        &b""[..],
        b"hello world, this is a text file\n",
        b"\x7fELF\x02\x01\x01",
    ] {
        let (e, p) = open_bytes(bytes);
        assert_eq!(e.kind(), &TraceErrorKind::NotATrace);
        assert_eq!(
            e.to_string(),
            format!("{p} is not a bpfrr trace (it does not start with the bytes \"BPFRRTRC\")")
        );
    }
}

#[test]
fn a_newer_format_version_is_named() {
    let mut f = trace_bytes(10, 4);
    f[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fix_header_checksum(&mut f);
    let (e, p) = open_bytes(&f);
    assert_eq!(
        e.to_string(),
        format!(
            "{p} was made by a newer bpfrr (format version {}, this bpfrr reads up to {FORMAT_VERSION}); upgrade bpfrr to open it",
            FORMAT_VERSION + 1
        )
    );
}

#[test]
fn a_cut_file_is_truncated_with_both_sizes() {
    let f = trace_bytes(10, 4);
    let full = f.len() as u64;
    for cut in [f.len() - 1, f.len() / 2, 100] {
        let (e, p) = open_bytes(&f[..cut]);
        assert_eq!(
            e.to_string(),
            format!(
                "{p} is truncated: expected {full} bytes, file has {cut} (the recording was interrupted or the copy is incomplete)"
            )
        );
    }
    let (e, _) = open_bytes(&f[..20]);
    assert_eq!(
        e.kind(),
        &TraceErrorKind::Truncated {
            expected: 64,
            actual: 20
        }
    );
}

#[test]
fn damage_is_a_checksum_mismatch_naming_the_part() {
    let f = trace_bytes(10, 4);
    let mut header = f.clone();
    header[20] ^= 1;
    let (e, p) = open_bytes(&header);
    assert_eq!(
        e.to_string(),
        format!("{p} is corrupted: the checksum of the header does not match its contents")
    );
    let mut dir = f.clone();
    let r = dir_range(&dir);
    dir[r.start + r.len() / 2] ^= 0x10;
    let (e, _) = open_bytes(&dir);
    assert_eq!(
        e.kind(),
        &TraceErrorKind::ChecksumMismatch {
            part: "the directory".into()
        }
    );
}

#[test]
fn a_well_checksummed_but_malformed_directory_is_invalid_structure() {
    let mut f = trace_bytes(10, 4);
    let r = dir_range(&f);
    for b in &mut f[r] {
        *b = 0xee;
    }
    fix_directory_checksum(&mut f);
    let (e, p) = open_bytes(&f);
    assert!(
        matches!(e.kind(), TraceErrorKind::InvalidStructure { .. }),
        "{e}"
    );
    assert!(
        e.to_string().starts_with(&format!(
            "{p} is not a valid bpfrr trace: the directory is malformed"
        )),
        "{e}"
    );
}

#[test]
fn trailing_bytes_are_invalid_structure() {
    let mut f = trace_bytes(3, 4);
    f.extend_from_slice(&[0; 5]);
    let (e, _) = open_bytes(&f);
    assert!(
        e.to_string().contains("5 unexpected bytes follow the end"),
        "{e}"
    );
}

#[test]
fn block_damage_is_found_on_first_use_only() {
    // 40 invocations, 4 per block: damage block 5 (invocations 20..24)
    let mut f = trace_bytes(40, 4);
    let t = Trace::from_bytes(f.clone()).unwrap();
    let b5 = t.directory().blocks[5];
    drop(t);
    f[b5.offset as usize + 10] ^= 0x01;

    let t = Trace::from_bytes(f).expect("opening does not read blocks");
    assert_eq!(t.invocation_count(), 40);
    assert_eq!(t.invocation_owned(0).unwrap(), invocation(0));
    assert_eq!(t.invocation_owned(39).unwrap(), invocation(39));
    for i in 20..24 {
        let e = t.invocation(i).unwrap_err();
        assert_eq!(
            e.kind(),
            &TraceErrorKind::ChecksumMismatch {
                part: "block 5".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "in-memory trace is corrupted: the checksum of block 5 does not match its contents"
        );
    }
    let got: Vec<_> = t.iter_invocations().collect();
    assert_eq!(
        got.len(),
        21,
        "20 good invocations, then the error, then the end"
    );
    assert!(got[..20].iter().all(|r| r.is_ok()));
    assert!(got[20].is_err());
    assert!(t.verify_all().is_err());
}

#[test]
fn a_well_checksummed_but_malformed_block_is_invalid_structure() {
    let mut f = trace_bytes(8, 4);
    let t = Trace::from_bytes(f.clone()).unwrap();
    let b1 = t.directory().blocks[1];
    drop(t);
    // overwrite the block's tail, where rkyv keeps the root (the vector's pointer and length)
    let end = (b1.offset + b1.len) as usize;
    for b in &mut f[end - 8..end] {
        *b = 0xff;
    }
    fix_block_checksums(&mut f);
    let t = Trace::from_bytes(f).unwrap();
    assert!(t.invocation(0).is_ok());
    let e = t.invocation(5).unwrap_err();
    assert!(
        matches!(e.kind(), TraceErrorKind::InvalidStructure { .. }),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("in-memory trace is not a valid bpfrr trace: block 1: malformed"),
        "{e}"
    );
}

#[test]
fn a_block_naming_a_missing_program_is_invalid_structure() {
    // A valid archive whose invocation names program 7: only the consistency check catches it.
    let mut f = trace_bytes(4, 4);
    let t = Trace::from_bytes(f.clone()).unwrap();
    let b0 = t.directory().blocks[0];
    drop(t);
    let mut invs: Vec<Invocation> = (0..4).map(invocation).collect();
    invs[2].program = 7;
    let block =
        rkyv::to_bytes::<rkyv::rancor::Error>(&InvocationBlock { invocations: invs }).unwrap();
    assert_eq!(block.len() as u64, b0.len, "same shape, same length");
    f[b0.offset as usize..(b0.offset + b0.len) as usize].copy_from_slice(&block);
    fix_block_checksums(&mut f);
    let t = Trace::from_bytes(f).unwrap();
    let e = t.invocation(0).unwrap_err();
    assert!(
        e.to_string()
            .contains("block 0: an invocation names program 7, but the trace has 2 programs"),
        "{e}"
    );
}
