//! Expressions over a real paused run: registers, casts, packet slices,
//! context fields, BTF types, formats, pointer descriptions, and garbage
//! input that must never panic.

mod session_support;

use bpfrr_replayer::expr::{self, Format, ValueKind};
use bpfrr_replayer::session::ValueDesc;
use proptest::prelude::*;
use session_support::*;

/// The firewall on a TCP/23 packet from 10.0.0.1, stopped at the first
/// map lookup (parse_packet has filled `info`).
fn at_lookup() -> bpfrr_replayer::session::Session<bpfrr_replayer::env::ModelEnv> {
    let mut s = xdp_fw_session(&hex_file("xdp_fw-tcp23.hex"), &[]);
    s.add_breakpoint("bpf_map_lookup_elem").unwrap();
    s.continue_();
    s
}

#[test]
fn packet_bytes_formats_and_casts() {
    let s = at_lookup();
    assert_eq!(s.print("pkt[12:14]").unwrap(), "[08 00]");
    assert_eq!(s.print("/be pkt[12:14]").unwrap(), "2048 (0x800)");
    assert_eq!(s.print("/x *(__be16 *)(pkt + 12)").unwrap(), "0x800");
    assert_eq!(s.print("*(u8 *)(pkt + 23)").unwrap(), "6", "IPPROTO_TCP");
    assert_eq!(s.print("/ip4 *(u32 *)(pkt + 26)").unwrap(), "10.0.0.1");
    assert_eq!(s.print("/ip4 pkt[30:34]").unwrap(), "10.0.0.2");
    assert_eq!(s.print("/mac pkt[0:6]").unwrap(), "02:00:00:00:00:02");
    assert_eq!(s.print("/x (u16)0x12345").unwrap(), "0x2345");
    assert_eq!(s.print("/d (s8)0xff").unwrap(), "-1");
    assert_eq!(s.print("/u (s8)0xff").unwrap(), "18446744073709551615");
    assert_eq!(s.print("/t 5").unwrap(), "0b101");
    assert_eq!(s.print("/c 65").unwrap(), "65 'A'");
    assert_eq!(s.print("1 + 2 * 3 == 7 && !0").unwrap(), "1");
    assert_eq!(
        s.print("-1 < 0").unwrap(),
        "0",
        "unsigned by default, as registers"
    );
    assert_eq!(s.print("(s64)-1 < 0").unwrap(), "1");
    assert_eq!(s.print("((u16 *)pkt)[6]").unwrap(), "8");
    assert_eq!(s.print("pkt_end - pkt").unwrap(), "54");
}

#[test]
fn context_fields_btf_types_and_pointer_descriptions() {
    let s = at_lookup();
    let end = s.print("ctx->data_end").unwrap();
    assert!(end.starts_with("pkt_end ("), "{end}");
    assert!(s.print("ctx->data").unwrap().starts_with("pkt ("));
    assert_eq!(s.print("ctx->ingress_ifindex").unwrap(), "1");
    // r2 is the lookup key, &info.saddr4: `struct pkt_info` starts 12 bytes before.
    let info = s.print("*(struct pkt_info *)(r2 - 12)").unwrap();
    assert!(
        info.contains("l4_proto") && info.contains("dport"),
        "{info}"
    );
    assert_eq!(
        s.print("((struct pkt_info *)(r2 - 12))->dport").unwrap(),
        "23"
    );
    assert_eq!(
        s.print("(*(struct pkt_info *)(r2 - 12)).l4_proto").unwrap(),
        "6"
    );
    assert_eq!(
        s.print("/ip4 ((struct pkt_info *)(r2 - 12))->saddr4")
            .unwrap(),
        "10.0.0.1"
    );
    assert_eq!(
        s.print("/x ((struct pkt_info *)(r2 - 12))->saddr4")
            .unwrap(),
        "0xa000001",
        "__be32 reads in network byte order"
    );
    let ctx = s.print("*ctx").unwrap();
    assert!(ctx.contains("ingress_ifindex"), "{ctx}");
    assert!(s.print("r10").unwrap().starts_with("fp ("));
    // r2 is the key pointer for the lookup: a stack slot of frame 0.
    let key = s.describe_value(s.regs()[2]);
    assert!(
        matches!(&key, ValueDesc::Pointer { text, .. } if text.starts_with("fp-")),
        "{key:?}"
    );
    let r1 = s.describe_value(s.regs()[1]);
    assert_eq!(r1.text(), Some("map(blocked_src)"));
    assert_eq!(s.describe_value(1234), ValueDesc::Scalar);
    let pkt = s.eval("pkt + 14").unwrap().as_u64().unwrap();
    assert_eq!(s.describe_value(pkt).text(), Some("pkt+14"));
    // Errors.
    for (bad, words) in [
        ("*(struct nope *)pkt", "no `struct nope`"),
        ("ctx->nope", "no field"),
        ("1 / 0", "division by zero"),
        ("*(u64 *)0", "cannot read"),
        ("*r10", "cast"),
        ("pkt[4:2]", "empty"),
        ("r12", "unknown name"),
        ("/q r1", "unknown format"),
    ] {
        let e = s.print(bad).unwrap_err().to_string();
        assert!(e.contains(words), "{bad}: {e}");
    }
}

#[test]
fn map_values_print_as_their_btf_type() {
    // A blocked source: the lookup returns its counter.
    let pkt = hex_file("xdp_fw-tcp23.hex");
    let mut s = xdp_fw_session(&pkt, &[[10, 0, 0, 1]]);
    s.add_breakpoint("bpf_map_lookup_elem").unwrap();
    s.continue_();
    s.step();
    let v = s.eval("*r0").unwrap();
    assert!(matches!(v.kind, ValueKind::Int { value: 0, .. }), "{v:?}");
    assert!(
        s.print("r0")
            .unwrap()
            .starts_with("map_value(blocked_src) (")
    );
}

#[test]
fn without_btf_values_are_bytes_and_struct_casts_say_why() {
    let mut s = model_session(&counting_loop(3), &[0; 16]);
    s.goto_visit(9, None, true);
    assert_eq!(s.print("*r0").unwrap(), "[00 00 00 00 00 00 00 00]");
    let e = s.print("*(struct iphdr *)pkt").unwrap_err().to_string();
    assert!(e.contains("no BTF"), "{e}");
    assert_eq!(Format::from_name("ip4").unwrap(), Format::Ip4);
}

const ALPHABET: &[&str] = &[
    "r1",
    "w2",
    "r10",
    "pkt",
    "ctx",
    "pkt_end",
    "0",
    "12",
    "0xffffffffffffffff",
    "(",
    ")",
    "*",
    "+",
    "-",
    "/",
    "%",
    "<<",
    ">>",
    "[",
    "]",
    ":",
    "->",
    ".",
    "u8",
    "u32",
    "__be16",
    "struct",
    "iphdr",
    "data_end",
    "saddr",
    "!",
    "~",
    "&&",
    "||",
    "==",
    "<",
    " ",
    "s64",
    "if",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn garbage_never_panics(text in ".{0,80}") {
        let _ = expr::parse(&text);
    }

    #[test]
    fn token_soup_never_panics_when_evaluated(picks in proptest::collection::vec(0..ALPHABET.len(), 0..24)) {
        thread_local! {
            static S: std::cell::RefCell<Option<bpfrr_replayer::session::Session<bpfrr_replayer::env::ModelEnv>>> =
                const { std::cell::RefCell::new(None) };
        }
        let text: String = picks.iter().map(|&i| ALPHABET[i]).collect::<Vec<_>>().join(" ");
        S.with(|cell| {
            let mut cell = cell.borrow_mut();
            let s = cell.get_or_insert_with(at_lookup);
            let _ = s.print(&text);
            let _ = s.print(&format!("/x {text}"));
        });
    }
}
