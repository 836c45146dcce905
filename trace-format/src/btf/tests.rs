//! BTF built by hand (a small builder below), read back and printed.

use proptest::prelude::*;

use super::*;

/// Builds a BTF blob the way the kernel lays it out.
#[derive(Default)]
struct Builder {
    types: Vec<u8>,
    strings: Vec<u8>,
    next_id: u32,
}

impl Builder {
    fn new() -> Self {
        Builder {
            types: Vec::new(),
            strings: vec![0],
            next_id: 1,
        }
    }

    fn str(&mut self, s: &str) -> u32 {
        if s.is_empty() {
            return 0;
        }
        let off = self.strings.len() as u32;
        self.strings.extend_from_slice(s.as_bytes());
        self.strings.push(0);
        off
    }

    fn put(&mut self, words: &[u32]) {
        for w in words {
            self.types.extend_from_slice(&w.to_le_bytes());
        }
    }

    fn head(
        &mut self,
        name: &str,
        kind: u32,
        vlen: u32,
        kind_flag: bool,
        size_or_type: u32,
    ) -> u32 {
        let n = self.str(name);
        let info = (kind << 24) | vlen | if kind_flag { 1 << 31 } else { 0 };
        self.put(&[n, info, size_or_type]);
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
        let id = self.head(name, 1, 0, false, size);
        self.put(&[((if signed { 1 } else { 0 }) << 24) | (size * 8)]);
        id
    }

    fn typedef(&mut self, name: &str, target: u32) -> u32 {
        self.head(name, 8, 0, false, target)
    }

    fn ptr(&mut self, target: u32) -> u32 {
        self.head("", 2, 0, false, target)
    }

    fn array(&mut self, elem: u32, index: u32, len: u32) -> u32 {
        let id = self.head("", 3, 0, false, 0);
        self.put(&[elem, index, len]);
        id
    }

    /// Members: (name, type, bit offset, bitfield size).
    fn structure(&mut self, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
        let bitfields = members.iter().any(|m| m.3 != 0);
        let id = self.head(name, 4, members.len() as u32, bitfields, size);
        for (n, t, off, bits) in members {
            let n = self.str(n);
            let off = if bitfields { bits << 24 | off } else { *off };
            self.put(&[n, *t, off]);
        }
        id
    }

    fn enumeration(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
        let id = self.head(name, 6, values.len() as u32, false, 4);
        for (n, v) in values {
            let n = self.str(n);
            self.put(&[n, *v as u32]);
        }
        id
    }

    fn finish(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xeb9fu16.to_le_bytes());
        out.push(1);
        out.push(0);
        for w in [
            24u32,
            0,
            self.types.len() as u32,
            self.types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&self.types);
        out.extend_from_slice(&self.strings);
        out
    }
}

struct Sample {
    btf: Btf,
    u8_: u32,
    u32_: u32,
    be32: u32,
    hdr: u32,
    proto_enum: u32,
    name_arr: u32,
    flags: u32,
}

/// A miniature `struct iphdr` plus an enum, a char array and bitfields.
fn sample() -> Sample {
    let mut b = Builder::new();
    let u8_ = b.int("unsigned char", 1, false);
    let u32_ = b.int("unsigned int", 4, false);
    let be32 = b.typedef("__be32", u32_);
    let chr = b.int("char", 1, true);
    let proto_enum = b.enumeration("proto", &[("TCP", 6), ("UDP", 17)]);
    let name_arr = b.array(chr, u32_, 8);
    let ptr = b.ptr(u8_);
    let hdr = b.structure(
        "iphdr",
        32,
        &[
            ("protocol", u8_, 0, 0),
            ("kind", proto_enum, 32, 0),
            ("saddr", be32, 64, 0),
            ("name", name_arr, 96, 0),
            ("data", ptr, 160, 0),
        ],
    );
    let flags = b.structure("flags", 4, &[("a", u32_, 0, 3), ("b", u32_, 3, 5)]);
    let btf = Btf::parse(&b.finish()).unwrap();
    Sample {
        btf,
        u8_,
        u32_,
        be32,
        hdr,
        proto_enum,
        name_arr,
        flags,
    }
}

#[test]
fn reads_types_names_and_sizes() {
    let s = sample();
    assert_eq!(s.btf.len(), 9);
    assert_eq!(s.btf.find_by_name(BtfKind::Struct, "iphdr"), Some(s.hdr));
    assert_eq!(s.btf.find_by_name(BtfKind::Typedef, "__be32"), Some(s.be32));
    assert_eq!(s.btf.find_by_name(BtfKind::Union, "iphdr"), None);
    assert_eq!(s.btf.resolve(s.be32), s.u32_);
    assert_eq!(s.btf.size_of(s.be32), Some(4));
    assert_eq!(s.btf.size_of(s.name_arr), Some(8));
    assert_eq!(s.btf.size_of(s.hdr), Some(32));
    assert_eq!(s.btf.size_of(0), None);
    assert_eq!(s.btf.type_name(s.name_arr), "char[8]");
    assert_eq!(s.btf.type_name(s.hdr), "struct iphdr");
    assert_eq!(s.btf.type_name(s.proto_enum), "enum proto");
    let members = s.btf.members(s.hdr).unwrap();
    assert_eq!(members.len(), 5);
    assert_eq!(members[2].name, "saddr");
    assert_eq!(members[2].bit_offset, 64);
    assert_eq!(
        s.btf.member_by_name(s.hdr, "name").unwrap().type_id,
        s.name_arr
    );
    assert!(s.btf.members(s.u8_).is_none());
}

#[test]
fn formats_a_struct_like_c() {
    let s = sample();
    let mut bytes = vec![0u8; 32];
    bytes[0] = 6;
    bytes[4] = 17;
    bytes[8..12].copy_from_slice(&[0x0a, 0, 0, 1]);
    bytes[12..16].copy_from_slice(b"eth0");
    bytes[20..28].copy_from_slice(&0xffff_8880_1234_5678u64.to_le_bytes());
    assert_eq!(
        s.btf.format_value(s.hdr, &bytes),
        "{ .protocol = 6, .kind = UDP, .saddr = 0x0100000a, .name = \"eth0\", .data = 0xffff888012345678 }"
    );
    // Unknown enum values print as numbers; too few bytes is said.
    assert_eq!(s.btf.format_value(s.proto_enum, &[99, 0, 0, 0]), "99");
    assert_eq!(
        s.btf.format_value(s.hdr, &bytes[..10]),
        "<truncated: 32 bytes needed, 10 available>"
    );
}

#[test]
fn formats_bitfields_and_arrays() {
    let s = sample();
    // a = 0b101 (5), b = 0b10110 (22): byte = 22 << 3 | 5.
    assert_eq!(
        s.btf.format_value(s.flags, &[(22 << 3) | 5, 0, 0, 0]),
        "{ .a = 5, .b = 22 }"
    );
    // A char array that is not text prints element by element.
    assert_eq!(
        s.btf.format_value(s.name_arr, &[1, 2, 0xff, 4, 5, 6, 7, 8]),
        "[1, 2, -1, 4, 5, 6, 7, 8]"
    );
}

#[test]
fn rejects_bad_headers_with_a_sentence() {
    assert_eq!(
        Btf::parse(b"").unwrap_err().to_string(),
        "truncated BTF: the BTF header ends early (near byte 0)"
    );
    assert!(matches!(
        Btf::parse(&[0x12, 0x34, 1, 0]),
        Err(BtfError::BadMagic { found: 0x3412 })
    ));
    assert_eq!(
        Btf::parse(&[0xeb, 0x9f, 1, 0]).unwrap_err(),
        BtfError::BigEndian
    );
    let mut blob = sample_blob();
    blob[2] = 2;
    assert_eq!(
        Btf::parse(&blob).unwrap_err(),
        BtfError::UnsupportedVersion { version: 2 }
    );
}

fn sample_blob() -> Vec<u8> {
    let mut b = Builder::new();
    let u32_ = b.int("unsigned int", 4, false);
    b.structure("pair", 8, &[("a", u32_, 0, 0), ("b", u32_, 32, 0)]);
    b.finish()
}

#[test]
fn self_referencing_types_do_not_hang() {
    let mut b = Builder::new();
    // typedef 1 -> typedef 2 -> typedef 1: a cycle.
    b.typedef("a", 2);
    b.typedef("b", 1);
    // An array of itself.
    b.array(3, 3, 4);
    let btf = Btf::parse(&b.finish()).unwrap();
    assert_eq!(btf.resolve(1), 0);
    assert_eq!(btf.size_of(1), None);
    assert_eq!(btf.size_of(3), None);
    let _ = btf.format_value(1, &[0; 16]);
    let _ = btf.format_value(3, &[0; 16]);
    let _ = btf.type_name(3);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(btf) = Btf::parse(&bytes) {
            for (id, _) in btf.types() {
                let _ = btf.format_value(id, &bytes);
                let _ = btf.type_name(id);
                let _ = btf.size_of(id);
            }
        }
    }

    #[test]
    fn mutated_valid_btf_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut b = Builder::new();
        let u32_ = b.int("unsigned int", 4, false);
        let e = b.enumeration("e", &[("X", 1)]);
        let arr = b.array(u32_, u32_, 3);
        let p = b.ptr(arr);
        b.structure("s", 24, &[("a", u32_, 0, 0), ("b", e, 32, 0), ("c", arr, 64, 0), ("d", p, 160, 3)]);
        let mut bytes = b.finish();
        for (pos, val) in flips {
            let i = pos % bytes.len();
            bytes[i] ^= val;
        }
        if let Ok(btf) = Btf::parse(&bytes) {
            for (id, _) in btf.types() {
                let _ = btf.format_value(id, &bytes);
                let _ = btf.type_name(id);
                let _ = btf.members(id);
            }
        }
    }
}

#[test]
fn a_signed_enum_of_absurd_size_formats_from_its_first_8_bytes() {
    // Found by `mutated_valid_btf_never_panics`: the bit width of a signed
    // enum's value was the BTF size times 8, which overflowed.
    let mut b = Builder::new();
    let id = b.head("huge", 6, 1, true, 1 << 30);
    let n = b.str("MINUS_ONE");
    b.put(&[n, u32::MAX]);
    let btf = Btf::parse(&b.finish()).unwrap();
    assert_eq!(btf.format_value(id, &[0xff; 8]), "MINUS_ONE");
}
