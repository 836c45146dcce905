//! The fixed 64-byte header at the start of every trace file.
//!
//! ```text
//! offset size field
//!  0      8   magic "BPFRRTRC"
//!  8      4   format_version (u32 LE)
//! 12      4   flags (u32 LE, no flag is defined in version 1: must be 0)
//! 16      8   payload_len (u64 LE): bytes after the header
//! 24      8   directory_offset (u64 LE, from the start of the file)
//! 32      8   directory_len (u64 LE)
//! 40      8   directory_checksum (u64 LE): xxh3-64 of the directory bytes
//! 48      8   reserved, zero
//! 56      8   header_checksum (u64 LE): xxh3-64 of bytes 0..56
//! ```
//!
//! The magic, the version field and the header checksum keep their place and
//! meaning in every future version, so any bpfrr can tell "damaged" from
//! "newer" before it reads anything else.

use super::error::TraceErrorKind;

/// The first 8 bytes of every trace file.
pub const MAGIC: [u8; 8] = *b"BPFRRTRC";
/// The format version this bpfrr writes, and the newest it reads.
pub const FORMAT_VERSION: u32 = 2;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Blocks and the directory start at multiples of this (rkyv needs aligned archives).
pub const ARCHIVE_ALIGN: u64 = 16;

/// The checksum used for the header, the directory and every block: xxh3-64.
///
/// xxh3 runs at memory speed (so checking a block costs far less than using
/// it), detects random corruption as well as any 64-bit hash, and the
/// `xxhash-rust` crate is pure Rust and widely used.
pub fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The decoded header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub format_version: u32,
    pub flags: u32,
    pub payload_len: u64,
    pub directory_offset: u64,
    pub directory_len: u64,
    pub directory_checksum: u64,
}

impl Header {
    /// The 64 header bytes, with the header checksum filled in.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.format_version.to_le_bytes());
        b[12..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.payload_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.directory_offset.to_le_bytes());
        b[32..40].copy_from_slice(&self.directory_len.to_le_bytes());
        b[40..48].copy_from_slice(&self.directory_checksum.to_le_bytes());
        let sum = checksum(&b[0..56]);
        b[56..64].copy_from_slice(&sum.to_le_bytes());
        b
    }

    /// Reads and checks the header of a whole file's bytes: magic, length,
    /// header checksum, version, flags, and that the payload and directory
    /// lie inside the file. The order of the checks decides which problem is
    /// reported, so it goes from the most basic to the most specific.
    pub fn parse(file: &[u8]) -> Result<Header, TraceErrorKind> {
        let len = file.len() as u64;
        if file.len() < MAGIC.len() {
            // A strict prefix of the magic is a cut-off trace; anything else is not a trace.
            return if !file.is_empty() && MAGIC.starts_with(file) {
                Err(TraceErrorKind::Truncated {
                    expected: HEADER_LEN as u64,
                    actual: len,
                })
            } else {
                Err(TraceErrorKind::NotATrace)
            };
        }
        if file[0..8] != MAGIC {
            return Err(TraceErrorKind::NotATrace);
        }
        if file.len() < HEADER_LEN {
            return Err(TraceErrorKind::Truncated {
                expected: HEADER_LEN as u64,
                actual: len,
            });
        }
        let u32_at = |o: usize| u32::from_le_bytes(file[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(file[o..o + 8].try_into().expect("8 bytes"));
        if checksum(&file[0..56]) != u64_at(56) {
            return Err(TraceErrorKind::ChecksumMismatch {
                part: "the header".into(),
            });
        }
        let header = Header {
            format_version: u32_at(8),
            flags: u32_at(12),
            payload_len: u64_at(16),
            directory_offset: u64_at(24),
            directory_len: u64_at(32),
            directory_checksum: u64_at(40),
        };
        if header.format_version == 0 {
            return Err(TraceErrorKind::InvalidStructure {
                detail: "the header names format version 0, which never existed".into(),
            });
        }
        if header.format_version > FORMAT_VERSION {
            return Err(TraceErrorKind::NewerVersion {
                found: header.format_version,
                supported: FORMAT_VERSION,
            });
        }
        if header.flags != 0 {
            return Err(TraceErrorKind::InvalidStructure {
                detail: format!(
                    "the header sets flags {:#x}, but format version {} defines none",
                    header.flags, header.format_version
                ),
            });
        }
        if u64_at(48) != 0 {
            return Err(TraceErrorKind::InvalidStructure {
                detail: "the reserved header bytes 48..56 are not zero".into(),
            });
        }
        let expected = (HEADER_LEN as u64).checked_add(header.payload_len).ok_or(
            TraceErrorKind::InvalidStructure {
                detail: format!(
                    "the header's payload length {} is impossible",
                    header.payload_len
                ),
            },
        )?;
        if len < expected {
            return Err(TraceErrorKind::Truncated {
                expected,
                actual: len,
            });
        }
        if len > expected {
            return Err(TraceErrorKind::InvalidStructure {
                detail: format!(
                    "{} unexpected bytes follow the end of the trace",
                    len - expected
                ),
            });
        }
        let dir_end = header.directory_offset.checked_add(header.directory_len);
        let dir_ok = header.directory_offset >= HEADER_LEN as u64
            && header.directory_offset.is_multiple_of(ARCHIVE_ALIGN)
            && header.directory_len > 0
            && dir_end == Some(len);
        if !dir_ok {
            return Err(TraceErrorKind::InvalidStructure {
                detail: format!(
                    "the directory position (offset {}, length {}) does not end the file",
                    header.directory_offset, header.directory_len
                ),
            });
        }
        Ok(header)
    }
}

/// Rounds `n` up to the next multiple of `ARCHIVE_ALIGN`.
pub fn align_up(n: u64) -> u64 {
    n.div_ceil(ARCHIVE_ALIGN) * ARCHIVE_ALIGN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            format_version: FORMAT_VERSION,
            flags: 0,
            payload_len: 32,
            directory_offset: 64,
            directory_len: 32,
            directory_checksum: 7,
        }
    }

    fn file_with(h: &Header) -> Vec<u8> {
        let mut f = h.to_bytes().to_vec();
        f.resize(HEADER_LEN + h.payload_len as usize, 0);
        f
    }

    #[test]
    fn round_trip() {
        let h = sample();
        assert_eq!(Header::parse(&file_with(&h)), Ok(h));
    }

    #[test]
    fn empty_and_foreign_files_are_not_traces() {
        assert_eq!(Header::parse(b""), Err(TraceErrorKind::NotATrace));
        assert_eq!(Header::parse(b"\x7fELF"), Err(TraceErrorKind::NotATrace));
        assert_eq!(Header::parse(&[0u8; 200]), Err(TraceErrorKind::NotATrace));
    }

    #[test]
    fn cut_inside_header_is_truncated() {
        let f = file_with(&sample());
        for cut in [3, 8, 40, 63] {
            assert_eq!(
                Header::parse(&f[..cut]),
                Err(TraceErrorKind::Truncated {
                    expected: 64,
                    actual: cut as u64
                }),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn cut_payload_is_truncated() {
        let f = file_with(&sample());
        assert_eq!(
            Header::parse(&f[..80]),
            Err(TraceErrorKind::Truncated {
                expected: 96,
                actual: 80
            })
        );
    }

    #[test]
    fn flipped_header_bit_is_a_checksum_mismatch() {
        let mut f = file_with(&sample());
        f[9] ^= 0x40; // inside the version field: still "damaged", not "newer"
        assert!(matches!(
            Header::parse(&f),
            Err(TraceErrorKind::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn newer_version_is_named() {
        let h = Header {
            format_version: 9,
            ..sample()
        };
        assert_eq!(
            Header::parse(&file_with(&h)),
            Err(TraceErrorKind::NewerVersion {
                found: 9,
                supported: FORMAT_VERSION
            })
        );
    }

    #[test]
    fn directory_outside_the_file_is_invalid() {
        for (offset, len) in [(64, 16), (0, 96), (72, 24), (64, 40), (u64::MAX, 2)] {
            let h = Header {
                directory_offset: offset,
                directory_len: len,
                ..sample()
            };
            assert!(
                matches!(
                    Header::parse(&file_with(&h)),
                    Err(TraceErrorKind::InvalidStructure { .. })
                ),
                "offset {offset} len {len}"
            );
        }
    }
}
