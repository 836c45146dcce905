//! The BTF reader on the running kernel's own BTF (when the machine has it)
//! and on the `.BTF` of every sample object.

use std::time::Instant;

use bpfrr_trace::btf::{Btf, BtfExt, BtfKind, TypeData};
use bpfrr_trace::object::ObjectFile;

#[test]
fn parses_vmlinux_btf_quickly_and_knows_iphdr() {
    let Ok(bytes) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no /sys/kernel/btf/vmlinux, which CI must have"
        );
        eprintln!("no /sys/kernel/btf/vmlinux on this machine; nothing to check");
        return;
    };
    let start = Instant::now();
    let btf = Btf::parse(&bytes).expect("vmlinux BTF parses");
    let elapsed = start.elapsed();
    eprintln!(
        "vmlinux BTF: {} bytes, {} types, parsed in {elapsed:?}",
        bytes.len(),
        btf.len()
    );
    assert!(btf.len() > 10_000);
    // Generous even for an unoptimized build on a busy machine.
    assert!(elapsed.as_secs_f64() < 5.0, "{elapsed:?}");

    let iphdr = btf
        .find_by_name(BtfKind::Struct, "iphdr")
        .expect("struct iphdr");
    assert_eq!(btf.size_of(iphdr), Some(20));
    let saddr = btf.member_by_name(iphdr, "saddr").expect("iphdr.saddr");
    assert_eq!(saddr.bit_offset, 96);
    assert_eq!(btf.size_of(saddr.type_id), Some(4));
    let protocol = btf
        .member_by_name(iphdr, "protocol")
        .expect("iphdr.protocol");
    assert_eq!(protocol.bit_offset, 72);

    // 10.0.0.1 -> 10.0.0.2, TCP, as the bytes sit in a packet.
    let pkt: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0xab, 0xcd, 10, 0, 0, 1, 10, 0,
        0, 2,
    ];
    let text = btf.format_value(iphdr, &pkt);
    assert!(text.contains(".ihl = 5"), "{text}");
    assert!(text.contains(".version = 4"), "{text}");
    assert!(text.contains(".protocol = 6"), "{text}");
    assert!(text.contains(".saddr = 0x0100000a"), "{text}");
    assert!(text.contains(".daddr = 0x0200000a"), "{text}");

    // struct xdp_md is what XDP programs see; its fields are __u32.
    let xdp_md = btf
        .find_by_name(BtfKind::Struct, "xdp_md")
        .expect("struct xdp_md");
    let names: Vec<&str> = btf
        .members(xdp_md)
        .unwrap()
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(&names[..3], &["data", "data_end", "data_meta"]);

    // An enum prints by name.
    let action = btf
        .find_by_name(BtfKind::Enum, "xdp_action")
        .expect("enum xdp_action");
    assert_eq!(btf.format_value(action, &2u32.to_le_bytes()), "XDP_PASS");

    // Every type can be named and sized without panicking.
    let start = Instant::now();
    for (id, t) in btf.types() {
        let _ = btf.type_name(id);
        let size = btf.size_of(id);
        if let TypeData::Struct { size: s, .. } = t.data {
            assert_eq!(size, Some(s as u64));
        }
    }
    eprintln!("named and sized every type in {:?}", start.elapsed());
}

#[test]
fn parses_btf_and_btf_ext_of_every_sample() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".bpf.o") {
            continue;
        }
        let obj = ObjectFile::parse(&std::fs::read(&path).unwrap()).unwrap();
        let raw = obj
            .btf_bytes()
            .unwrap_or_else(|| panic!("{}: no .BTF (build with -g)", path.display()));
        let btf = Btf::parse(raw).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // Each program has a BTF FUNC of its own name.
        for prog in obj.programs() {
            let id = btf.find_by_name(BtfKind::Func, &prog.name);
            assert!(
                id.is_some(),
                "{}: no BTF func {}",
                path.display(),
                prog.name
            );
        }
        let ext = BtfExt::parse(obj.btf_ext_bytes().expect(".BTF.ext"), &btf).unwrap();
        for section in obj.text_sections() {
            let lines = ext
                .line_info
                .get(&section.name)
                .expect("line info per text section");
            assert!(!lines.is_empty());
            assert!(
                lines
                    .iter()
                    .all(|l| (l.insn_off as usize) < section.insns.len() * 8)
            );
            assert!(
                lines
                    .iter()
                    .any(|l| !l.text.is_empty() && l.file.ends_with(".c"))
            );
        }
        seen += 1;
    }
    assert!(seen > 0, "no samples/*.bpf.o");
}
