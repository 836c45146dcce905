//! Classic pcap files (not pcapng): reading the packets `bpfrr run` and
//! `bpfrr record` take as inputs, and writing the packets of a trace for
//! Wireshark / tcpdump (`bpfrr export-pcap`).
//!
//! Format (<https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html>):
//! a 24-byte file header (magic, version 2.4, reserved, snap length, link
//! type), then per packet a 16-byte record header (seconds, fraction,
//! captured length, original length) and the captured bytes. The magic
//! gives the byte order and whether the fraction is micro- or nanoseconds.
//! The reader takes both byte orders and both resolutions; the writer writes
//! little-endian with nanosecond stamps.

use std::io::{self, Write};

/// `LINKTYPE_ETHERNET`: packets start with an Ethernet header.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// `LINKTYPE_RAW`: packets start with an IPv4 or IPv6 header.
pub const LINKTYPE_RAW: u32 = 101;

/// Magic of a file with microsecond stamps, in the writer's byte order.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// Magic of a file with nanosecond stamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

/// Why bytes are not a readable pcap file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    #[error("not a pcap file: {len} bytes is shorter than the 24-byte header")]
    TooShort { len: usize },
    #[error(
        "not a pcap file (magic {magic:#010x}); pcapng is not supported, convert with `editcap -F pcap`"
    )]
    BadMagic { magic: u32 },
    #[error("pcap truncated: packet {packet} has an incomplete record header")]
    TruncatedHeader { packet: usize },
    #[error("pcap truncated: packet {packet} needs {len} bytes")]
    TruncatedData { packet: usize, len: usize },
}

/// One captured packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcapRecord {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Length of the packet on the wire (at least `data.len()`).
    pub orig_len: u32,
    /// The captured bytes.
    pub data: Vec<u8>,
}

/// The contents of a pcap file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcapFile {
    /// `LINKTYPE_*` of every packet.
    pub linktype: u32,
    pub snaplen: u32,
    /// The stamps had nanosecond resolution.
    pub nanosecond: bool,
    pub records: Vec<PcapRecord>,
}

/// Parses a classic pcap file (either byte order, µs or ns stamps).
pub fn read(bytes: &[u8]) -> Result<PcapFile, PcapError> {
    if bytes.len() < FILE_HEADER_LEN {
        return Err(PcapError::TooShort { len: bytes.len() });
    }
    let magic = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    let (le, nanosecond) = match magic {
        MAGIC_MICROS => (true, false),
        MAGIC_NANOS => (true, true),
        m if m == MAGIC_MICROS.swap_bytes() => (false, false),
        m if m == MAGIC_NANOS.swap_bytes() => (false, true),
        _ => return Err(PcapError::BadMagic { magic }),
    };
    let u32_at = |o: usize| {
        let b: [u8; 4] = bytes[o..o + 4].try_into().expect("4 bytes");
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut file = PcapFile {
        snaplen: u32_at(16),
        linktype: u32_at(20),
        nanosecond,
        records: Vec::new(),
    };
    let mut o = FILE_HEADER_LEN;
    while o < bytes.len() {
        let packet = file.records.len() + 1;
        if o + RECORD_HEADER_LEN > bytes.len() {
            return Err(PcapError::TruncatedHeader { packet });
        }
        let (secs, frac) = (u64::from(u32_at(o)), u64::from(u32_at(o + 4)));
        let len = u32_at(o + 8) as usize;
        let orig_len = u32_at(o + 12);
        let start = o + RECORD_HEADER_LEN;
        let Some(data) = start.checked_add(len).and_then(|end| bytes.get(start..end)) else {
            return Err(PcapError::TruncatedData { packet, len });
        };
        let frac_ns = if nanosecond { frac } else { frac * 1000 };
        file.records.push(PcapRecord {
            ts_ns: secs * 1_000_000_000 + frac_ns,
            orig_len,
            data: data.to_vec(),
        });
        o = start + len;
    }
    Ok(file)
}

/// The packets of a classic pcap file, without their stamps.
pub fn read_packets(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PcapError> {
    Ok(read(bytes)?.records.into_iter().map(|r| r.data).collect())
}

/// Streams packets into a pcap file (little-endian, nanosecond stamps).
pub struct PcapWriter<W: Write> {
    out: W,
    written: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header. `snaplen` is the largest captured length the
    /// file will hold (readers use it to size buffers).
    pub fn new(mut out: W, linktype: u32, snaplen: u32) -> io::Result<Self> {
        let mut h = Vec::with_capacity(FILE_HEADER_LEN);
        h.extend(MAGIC_NANOS.to_le_bytes());
        h.extend(2u16.to_le_bytes()); // version 2.4
        h.extend(4u16.to_le_bytes());
        h.extend([0u8; 8]); // reserved (thiszone, sigfigs)
        h.extend(snaplen.to_le_bytes());
        h.extend(linktype.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out, written: 0 })
    }

    /// Appends one packet. `orig_len` below `data.len()` is raised to it.
    pub fn write(&mut self, record: &PcapRecord) -> io::Result<()> {
        let caplen = u32::try_from(record.data.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a packet longer than 4 GiB cannot be stored in a pcap file",
            )
        })?;
        let secs = u32::try_from(record.ts_ns / 1_000_000_000).unwrap_or(u32::MAX);
        let nanos = (record.ts_ns % 1_000_000_000) as u32;
        let mut h = [0u8; RECORD_HEADER_LEN];
        h[0..4].copy_from_slice(&secs.to_le_bytes());
        h[4..8].copy_from_slice(&nanos.to_le_bytes());
        h[8..12].copy_from_slice(&caplen.to_le_bytes());
        h[12..16].copy_from_slice(&record.orig_len.max(caplen).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&record.data)?;
        self.written += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn count(&self) -> u64 {
        self.written
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// A whole pcap file in memory.
pub fn to_bytes(file: &PcapFile) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), file.linktype, file.snaplen)
        .expect("writing to a Vec cannot fail");
    for r in &file.records {
        w.write(r).expect("writing to a Vec cannot fail");
    }
    w.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PcapFile {
        PcapFile {
            linktype: LINKTYPE_RAW,
            snaplen: 65535,
            nanosecond: true,
            records: vec![
                PcapRecord {
                    ts_ns: 1_700_000_000_123_456_789,
                    orig_len: 1500,
                    data: vec![0x45, 0, 0, 20],
                },
                PcapRecord {
                    ts_ns: 5,
                    orig_len: 1,
                    data: vec![9],
                },
            ],
        }
    }

    #[test]
    fn written_files_read_back_identically() {
        let f = sample();
        let bytes = to_bytes(&f);
        assert_eq!(&bytes[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(read(&bytes).unwrap(), f);
        assert_eq!(
            read_packets(&bytes).unwrap(),
            vec![vec![0x45, 0, 0, 20], vec![9]]
        );
    }

    #[test]
    fn big_endian_microsecond_files_are_read() {
        let mut p = vec![];
        p.extend(MAGIC_MICROS.to_be_bytes());
        p.extend([0, 2, 0, 4]);
        p.extend([0u8; 8]);
        p.extend(96u32.to_be_bytes());
        p.extend(LINKTYPE_ETHERNET.to_be_bytes());
        p.extend(3u32.to_be_bytes()); // seconds
        p.extend(7u32.to_be_bytes()); // microseconds
        p.extend(2u32.to_be_bytes());
        p.extend(60u32.to_be_bytes());
        p.extend([0xaa, 0xbb]);
        let f = read(&p).unwrap();
        assert_eq!((f.linktype, f.snaplen, f.nanosecond), (1, 96, false));
        assert_eq!(
            f.records,
            vec![PcapRecord {
                ts_ns: 3_000_007_000,
                orig_len: 60,
                data: vec![0xaa, 0xbb]
            }]
        );
    }

    #[test]
    fn damaged_files_are_clear_errors() {
        let bytes = to_bytes(&sample());
        let e = read(&bytes[..bytes.len() - 1]).unwrap_err();
        assert_eq!(e.to_string(), "pcap truncated: packet 2 needs 1 bytes");
        let e = read(&bytes[..24 + 20 + 3]).unwrap_err();
        assert!(
            e.to_string()
                .contains("packet 2 has an incomplete record header")
        );
        assert!(
            read(&[0u8; 30])
                .unwrap_err()
                .to_string()
                .contains("not a pcap")
        );
        assert!(read(&[0u8; 3]).unwrap_err().to_string().contains("shorter"));
        // A huge captured length does not overflow.
        let mut huge = bytes[..24].to_vec();
        huge.extend([0u8; 8]);
        huge.extend(u32::MAX.to_le_bytes());
        huge.extend(u32::MAX.to_le_bytes());
        assert!(matches!(read(&huge), Err(PcapError::TruncatedData { .. })));
    }
}
