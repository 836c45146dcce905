//! Arbitrary and mutated bytes never panic the reader: every input either
//! fails to open with an error, or opens and reads back without panicking
//! (each invocation through the accessor, the iterator and the summary).

mod trace_common;

use std::sync::OnceLock;

use bpfrr_trace::trace::*;
use proptest::prelude::*;
use trace_common::*;

/// A valid trace of 30 invocations in 8 blocks, made once.
fn valid() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| trace_bytes(30, 4))
}

fn ranges(file: &[u8]) -> (std::ops::Range<usize>, Vec<std::ops::Range<usize>>) {
    let t = Trace::from_bytes(file.to_vec()).unwrap();
    let off = u64::from_le_bytes(file[24..32].try_into().unwrap()) as usize;
    let blocks = t
        .directory()
        .blocks
        .iter()
        .map(|b| b.offset as usize..(b.offset + b.len) as usize)
        .collect();
    (off..file.len(), blocks)
}

/// Opens the bytes; when they open, reads everything.
fn open_and_read(bytes: Vec<u8>) {
    if let Ok(trace) = Trace::from_bytes(bytes) {
        exercise(&trace);
    }
}

fn flip(bytes: &mut [u8], flips: &[(usize, u8)], within: std::ops::Range<usize>) {
    for &(pos, bit) in flips {
        let i = within.start + pos % within.len();
        bytes[i] ^= 1 << (bit % 8);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 1000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        open_and_read(bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_looking_header(
        body in proptest::collection::vec(any::<u8>(), 0..4096),
        dir_start in any::<usize>(),
        dir_to_end in any::<bool>(),
        dir_len in 0u64..4200,
    ) {
        // Mostly a directory that ends the file (so the random bytes reach
        // the archive check), sometimes anywhere.
        let file_len = (HEADER_LEN + body.len()) as u64;
        let directory_offset = (HEADER_LEN + dir_start % (body.len() + 1)) as u64 & !15;
        let directory_len = if dir_to_end { file_len - directory_offset } else { dir_len };
        let header = Header {
            format_version: FORMAT_VERSION,
            flags: 0,
            payload_len: body.len() as u64,
            directory_offset,
            directory_len,
            directory_checksum: 0,
        };
        let mut f = header.to_bytes().to_vec();
        f.extend_from_slice(&body);
        if directory_offset + directory_len <= file_len {
            fix_directory_checksum(&mut f[..]);
        }
        open_and_read(f);
    }

    #[test]
    fn bit_flips_anywhere(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut f = valid().to_vec();
        let n = f.len();
        flip(&mut f, &flips, 0..n);
        open_and_read(f);
    }

    #[test]
    fn truncated_or_extended_copies(len in 0usize..20_000) {
        let mut f = valid().to_vec();
        f.resize(len, 0);
        let same = len == valid().len();
        let r = Trace::from_bytes(f);
        prop_assert_eq!(r.is_ok(), same);
    }

    #[test]
    fn header_fields_changed_with_a_fixed_header_checksum(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut f = valid().to_vec();
        flip(&mut f, &flips, 8..56);
        fix_header_checksum(&mut f);
        open_and_read(f);
    }

    #[test]
    fn directory_bytes_changed_with_fixed_checksums(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut f = valid().to_vec();
        let (dir, _) = ranges(&f);
        flip(&mut f, &flips, dir);
        fix_directory_checksum(&mut f);
        open_and_read(f);
    }

    #[test]
    fn block_bytes_changed_with_fixed_checksums(
        block in any::<usize>(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
    ) {
        let mut f = valid().to_vec();
        let (_, blocks) = ranges(&f);
        let target = blocks[block % blocks.len()].clone();
        flip(&mut f, &flips, target);
        fix_block_checksums(&mut f);
        // Every checksum matches: the directory opens, and the damaged block
        // is seen only through the invocation accessor.
        let trace = Trace::from_bytes(f).expect("checksums were fixed; the directory is intact");
        exercise(&trace);
    }
}

#[test]
fn the_unmutated_trace_reads_whole() {
    let t = Trace::from_bytes(valid().to_vec()).unwrap();
    assert_eq!(t.directory().blocks.len(), 8);
    exercise(&t);
    t.verify_all().unwrap();
}
