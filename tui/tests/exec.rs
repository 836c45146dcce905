//! `bpfrr exec` through the real binary: the bpf_conformance plugin protocol
//! and packet programs.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn exec(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bpfrr"))
        .arg("exec")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run bpfrr");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().expect("bpfrr finishes")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn conformance_protocol_prints_r0_in_hex() {
    // ldxdw r0, [r1+2]; exit — the bpf_conformance runner's memory format: pairs followed by two spaces.
    let mem = "aa  bb  11  22  33  44  55  66  77  88  cc  dd  ";
    let o = exec(&[mem], "79100200000000009500000000000000\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o).trim(), "8877665544332211");
}

#[test]
fn conformance_protocol_without_memory_and_with_callx() {
    // mov r1, -1; mov r2, 5; callx r2 (helper 5, unwind); mov r0, 2; exit
    let o = exec(
        &[],
        "b701000000ffffffb702000005000000 8d020000000000000 b700000002000000 9500000000000000",
    );
    // The hex above has an odd digit on purpose; fix it and expect success.
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("odd number of hex digits"));
    let o = exec(
        &[],
        "b7010000ffffffff b702000005000000 8d02000000000000 b700000002000000 9500000000000000",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o).trim(), "2");
}

#[test]
fn faults_and_bad_programs_exit_non_zero_with_a_message() {
    // stb [r10+0], 0: one byte above the stack.
    let o = exec(&[], "720a0000000000009500000000000000");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("out of bounds") && err.contains("stack"),
        "{err}"
    );
    // A reserved field set: rejected at load.
    let o = exec(&[], "b7000100000000009500000000000000");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be loaded"));
    let o = exec(&[], "");
    assert!(!o.status.success());
}

/// An Ethernet frame: dst, src, EtherType 0x0800, then 4 payload bytes.
const FRAME: &str = "ffffffffffff0200000000010800deadbeef";

#[test]
fn xdp_program_rewrites_the_packet_and_returns_xdp_tx() {
    // r2 = ctx->data; r3 = ctx->data_end; r4 = r2 + 15; if r4 > r3 goto out;
    // *(u8 *)(r2 + 14) = 0x42; r0 = 3 (XDP_TX); exit; out: r0 = 1; exit
    let prog = [
        "61120000", "00000000", // r2 = *(u32 *)(r1 + 0)
        "61130400", "00000000", // r3 = *(u32 *)(r1 + 4)
        "bf240000", "00000000", // r4 = r2
        "07040000", "0f000000", // r4 += 15
        "2d340300", "00000000", // if r4 > r3 goto +3
        "72020e00", "42000000", // *(u8 *)(r2 + 14) = 0x42
        "b7000000", "03000000", // r0 = 3
        "95000000", "00000000", // exit
        "b7000000", "01000000", // r0 = 1
        "95000000", "00000000", // exit
    ]
    .concat();
    let dir = std::env::temp_dir().join(format!("bpfrr-exec-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("xdp.bin");
    let bytes: Vec<u8> = (0..prog.len() / 2)
        .map(|i| u8::from_str_radix(&prog[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    std::fs::write(&file, bytes).unwrap();
    let o = exec(
        &["--type", "xdp", "--packet", FRAME, file.to_str().unwrap()],
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        stdout(&o),
        "r0=0x3\npacket=ffffffffffff020000000001080042adbeef\n"
    );
    // Hex on stdin works the same; a 14-byte packet takes the bounds-check branch.
    let o = exec(&["--type", "xdp", "--packet", &FRAME[..28]], &prog);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("r0=0x1\npacket={}\n", &FRAME[..28]));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn socket_filter_sees_the_frame_after_the_ethernet_header() {
    // r0 = LD_ABS u8 [0] (the first byte after the Ethernet header), exit.
    let o = exec(
        &["--type", "socket", "--packet", FRAME],
        "30000000000000009500000000000000",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), "r0=0xde\n");
    // sched_cls sees the whole frame: skb->len (offset 0) is 18.
    let o = exec(
        &["--type", "sched_cls", "--packet", FRAME],
        "61100000000000009500000000000000",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(stdout(&o), format!("r0=0x12\npacket={FRAME}\n"));
}
