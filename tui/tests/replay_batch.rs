//! `bpfrr replay` in batch mode, through the real binary: time travel that
//! restores every register and memory byte, breakpoints (file:line,
//! conditional, ignore counts, helpers), watchpoints answering "who last
//! wrote this", origin, invocation switching, JSON output and errors.
//!
//! The committed xdp_fw kernel recording (samples/traces/xdp_fw.bpfrr)
//! has invocations of about 100 steps, too short for a 1000-step walk, so
//! that walk runs on a looping program recorded by the test itself from a
//! model run (`record_model_run`); the sample invocations are walked end
//! to end and back as well.

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfrr_replayer::replay::{ModelInput, record_model_run};
use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::isa::{
    AluOp, CallTarget, Imm64Kind, Insn, JmpCond, Operand, Size, Width, encode_all,
};
use bpfrr_trace::trace::{Map, MapEntry, MapSnapshot, Program, SnapshotTime, TraceMeta};
use serde_json::Value;

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

fn xdp_fw() -> String {
    samples()
        .join("traces/xdp_fw.bpfrr")
        .to_string_lossy()
        .into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("replay-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

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

/// Runs `replay TRACE [extra] -x c1 -x c2 ...` and expects success.
fn replay(trace: &str, extra: &[&str], commands: &[&str]) -> String {
    let mut args = vec!["replay", trace];
    args.extend_from_slice(extra);
    for c in commands {
        args.push("-x");
        args.push(c);
    }
    let (code, out, err) = bpfrr(&args);
    assert_eq!(code, 0, "bpfrr {args:?} failed:\n{out}\n{err}");
    out
}

/// The same with `--json`: one parsed object per command.
fn replay_json(trace: &str, extra: &[&str], commands: &[&str]) -> Vec<Value> {
    let (code, v) = replay_json_status(trace, extra, commands);
    assert_eq!(code, 0, "{v:#?}");
    v
}

/// `--json` batch run that may have failing commands: exit code and objects.
fn replay_json_status(trace: &str, extra: &[&str], commands: &[&str]) -> (i32, Vec<Value>) {
    let mut args = vec!["replay", trace, "--json"];
    args.extend_from_slice(extra);
    for c in commands {
        args.push("-x");
        args.push(c);
    }
    let (code, out, _) = bpfrr(&args);
    let v: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(v.len(), commands.len(), "one object per command:\n{out}");
    for (obj, cmd) in v.iter().zip(commands) {
        assert_eq!(obj["command"], *cmd);
    }
    (code, v)
}

fn helper(name: &str) -> i32 {
    helper_by_name(name).unwrap().id as i32
}

/// A raw tracepoint program that loops 200 times: a helper call, a stack
/// spill and fill, and a store into a .bss map value each time (1606 steps).
fn loop_trace() -> String {
    let alu = |op, dst, src| Insn::Alu {
        width: Width::W64,
        op,
        dst,
        src,
    };
    let insns = [
        alu(AluOp::Mov, 6, Operand::Imm(0)),
        alu(AluOp::Mov, 7, Operand::Imm(0)),
        Insn::LoadImm64 {
            kind: Imm64Kind::MapIdxValue,
            dst: 8,
            imm: 0,
        },
        // loop (slot 4):
        Insn::Call(CallTarget::Helper(helper("bpf_get_prandom_u32"))),
        alu(AluOp::And, 0, Operand::Imm(0xff)),
        alu(AluOp::Add, 6, Operand::Reg(0)),
        Insn::Store {
            size: Size::DW,
            dst: 10,
            off: -8,
            src: Operand::Reg(6),
        },
        Insn::Load {
            size: Size::DW,
            signed: false,
            dst: 1,
            src: 10,
            off: -8,
        },
        Insn::Store {
            size: Size::DW,
            dst: 8,
            off: 0,
            src: Operand::Reg(1),
        },
        alu(AluOp::Add, 7, Operand::Imm(1)),
        // slot 11: back to slot 4 while r7 < 200
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Lt,
            dst: 7,
            src: Operand::Imm(200),
            off: -8,
        },
        alu(AluOp::Mov, 0, Operand::Reg(6)),
        Insn::Exit,
    ];
    let program = Program {
        id: 0,
        name: "looper".into(),
        prog_type: 17,
        insns: encode_all(&insns).iter().map(|r| r.to_bytes()).collect(),
        used_maps: vec![0],
        ..Program::default()
    };
    let bss = Map {
        id: 0,
        name: ".bss".into(),
        map_type: 2,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        initial_data: Some(vec![0; 8]),
        snapshots: vec![MapSnapshot {
            when: SnapshotTime::Start,
            n_cpus: 1,
            entries: vec![MapEntry {
                key: vec![0; 4],
                value: vec![0; 8],
            }],
        }],
        ..Map::default()
    };
    let meta = TraceMeta {
        bpfrr_version: "test".into(),
        n_cpus: 1,
        ..TraceMeta::default()
    };
    let inputs = vec![ModelInput {
        ctx: vec![0; 16],
        ..ModelInput::default()
    }];
    let path = scratch("loop.bpfrr");
    record_model_run(&path, meta, &[program], &[bss], &inputs, |_| {}).unwrap();
    path.to_string_lossy().into_owned()
}

/// Writes `commands` to a file for `--commands`.
fn command_file(name: &str, commands: &[String]) -> String {
    let p = scratch(name);
    std::fs::write(&p, commands.join("\n")).unwrap();
    p.to_string_lossy().into_owned()
}

/// States from a JSON batch run: every `info state` object, in order.
fn states(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "state")
        .collect()
}

#[test]
fn a_thousand_steps_forward_and_back_restore_every_register_and_byte() {
    let trace = loop_trace();
    // State after each of 1000 steps forward, then after each step back.
    let mut cmds = vec!["info state".to_string()];
    for _ in 0..1000 {
        cmds.push("step".into());
        cmds.push("info state".into());
    }
    for _ in 0..1000 {
        cmds.push("reverse-step".into());
        cmds.push("info state".into());
    }
    let file = command_file("walk.cmds", &cmds);
    let (code, out, err) = bpfrr(&["replay", &trace, "--json", "--commands", &file]);
    assert_eq!(code, 0, "{err}");
    let st = states(&out);
    assert_eq!(st.len(), 2001);
    let forward = &st[..1001];
    let backward = &st[1000..];
    for (i, s) in forward.iter().enumerate() {
        assert_eq!(s["step"], i as u64, "forward state {i}");
    }
    // The walk really changed registers, the stack and the map value.
    let region = |s: &Value, kind: &str| -> String {
        s["regions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["kind"].as_str().unwrap().contains(kind))
            .unwrap_or_else(|| panic!("no {kind} region in {s}"))["bytes"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(forward[0]["registers"], forward[1000]["registers"]);
    assert_ne!(
        region(&forward[0], "stack"),
        region(&forward[1000], "stack")
    );
    // The .bss value (map 0) holds the running sum.
    assert!(region(&forward[1000], "map 0").chars().any(|c| c != '0'));
    // Every state going back equals the state at that step going forward:
    // every register and every byte of every live region.
    for (k, s) in backward.iter().enumerate() {
        let i = 1000 - k;
        assert_eq!(s, &forward[i], "state at step {i} differs going back");
    }
}

#[test]
fn every_sample_invocation_walks_to_its_end_and_back_exactly() {
    let trace = xdp_fw();
    for inv in ["0", "1", "4"] {
        let mut cmds = vec!["info state".to_string()];
        // Far more steps than the invocation has: movement stops at the end.
        for _ in 0..200 {
            cmds.push("step".into());
            cmds.push("info state".into());
        }
        let file = command_file(&format!("fw{inv}.cmds"), &cmds);
        let (code, out, err) = bpfrr(&["replay", &trace, "-i", inv, "--json", "--commands", &file]);
        assert_eq!(code, 0, "{err}");
        let fwd = states(&out);
        let end = fwd.last().unwrap()["step"].as_u64().unwrap();
        assert!(end > 50 && end < 200, "invocation {inv} ends at step {end}");
        let mut back = vec![format!("goto {end}"), "info state".to_string()];
        for _ in 0..end {
            back.push("rs".into());
            back.push("info state".into());
        }
        let file = command_file(&format!("fw{inv}-back.cmds"), &back);
        let (code, out, err) = bpfrr(&["replay", &trace, "-i", inv, "--json", "--commands", &file]);
        assert_eq!(code, 0, "{err}");
        let bwd = states(&out);
        assert_eq!(bwd.len() as u64, end + 1);
        for (k, s) in bwd.iter().enumerate() {
            let step = end as usize - k;
            assert_eq!(
                s, &fwd[step],
                "invocation {inv}: step {step} differs going back"
            );
        }
        // The packet is part of the compared state.
        assert!(
            fwd[0]["regions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["kind"] == "the packet")
        );
    }
}

#[test]
fn break_at_file_line_continue_and_print() {
    let out = replay(
        &xdp_fw(),
        &[],
        &[
            "break xdp_fw.bpf.c:210",
            "continue",
            "print/ip4 *(u32 *)(r10 - 12)",
            "p/x r1",
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("breakpoint 1 at xdp_fw.bpf.c:210 (insn "),
        "{out}"
    );
    assert_eq!(lines[1], "breakpoint 1");
    assert!(
        lines[2].starts_with("step ") && lines[2].contains("(xdp_fw.bpf.c:210): "),
        "{out}"
    );
    assert!(
        lines[3].starts_with("210\t") && lines[3].contains("bpf_map_lookup_elem(&blocked_src"),
        "{out}"
    );
    // Invocation 0 is the UDP packet from 10.0.0.1.
    assert_eq!(lines[4], "*(u32 *)(r10 - 12) = 10.0.0.1");
}

#[test]
fn a_conditional_breakpoint_stops_only_where_its_condition_holds() {
    // Invocation 4: 802.1ad then 802.1Q tags; line 144 checks each ethertype.
    let v = replay_json(
        &xdp_fw(),
        &["-i", "4"],
        &[
            "break xdp_fw.bpf.c:144 if r7 == 0x8100",
            "c",
            "p/x r7",
            "info breakpoints",
            "goto 0",
            "condition 1",
            "c",
            "p/x r7",
            "ignore 1 1",
            "goto 0",
            "c",
            "p/x r7",
        ],
    );
    assert_eq!(v[0]["kind"], "breakpoint_set");
    assert_eq!(v[0]["condition"], "r7 == 0x8100");
    assert_eq!(v[1]["kind"], "stopped");
    assert_eq!(v[1]["reason"], "breakpoint");
    assert_eq!(v[1]["place"]["line"], 144);
    assert_eq!(v[2]["text"], "0x8100");
    assert_eq!(v[3]["breakpoints"][0]["hits"], 1);
    // Without the condition the first visit (the outer 802.1ad tag) stops.
    assert_eq!(v[6]["reason"], "breakpoint");
    assert_eq!(v[7]["text"], "0x88a8");
    assert!(v[6]["place"]["step"].as_u64() < v[1]["place"]["step"].as_u64());
    // Ignoring one hit skips it: the second visit again.
    assert_eq!(v[10]["reason"], "breakpoint");
    assert_eq!(v[10]["place"]["step"], v[1]["place"]["step"]);
    assert_eq!(v[11]["text"], "0x8100");
}

#[test]
fn breakpoints_on_helpers_functions_and_instructions() {
    let v = replay_json(
        &xdp_fw(),
        &[],
        &[
            "b helper bpf_map_lookup_elem",
            "c",
            "delete 1",
            "goto 0",
            "b parse_packet",
            "c",
            "bt",
            "finish",
            "b *10",
            "disable 3",
            "goto 0",
            "c",
            "until 10",
            "back-to 0",
        ],
    );
    assert_eq!(v[1]["reason"], "breakpoint");
    assert_eq!(v[1]["place"]["text"], "call bpf_map_lookup_elem");
    assert_eq!(v[2]["kind"], "message");
    assert_eq!(v[5]["reason"], "breakpoint");
    assert_eq!(v[5]["place"]["function"], "parse_packet");
    let frames = v[6]["frames"].as_array().unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0]["place"]["function"], "parse_packet");
    assert_eq!(frames[1]["place"]["function"], "xdp_firewall");
    // finish returns to xdp_firewall, right after the call.
    assert_eq!(v[7]["reason"], "done");
    assert_eq!(v[7]["place"]["function"], "xdp_firewall");
    // `b *10`, disabled: continue from 0 stops at parse_packet (breakpoint 2) only.
    assert_eq!(v[8]["sites"][0][1], 10);
    assert_eq!(v[11]["place"]["function"], "parse_packet");
    assert_eq!(v[12]["place"]["insn"], 10);
    assert_eq!(v[13]["place"]["insn"], 0);
    assert_eq!(v[13]["place"]["step"], 0);
}

#[test]
fn a_watchpoint_with_reverse_continue_finds_who_last_wrote_the_value() {
    let v = replay_json(
        &xdp_fw(),
        &[],
        &[
            "break xdp_fw.bpf.c:210",
            "c",
            "watch *(u32 *)(r10 - 12)",
            "reverse-continue",
            "where",
            "continue",
        ],
    );
    assert_eq!(v[2]["kind"], "watchpoint_set");
    assert_eq!(v[2]["watching"], "4 bytes at fp-12");
    assert_eq!(v[2]["value"], "0a000001");
    // Backward, the session stops before the step that wrote 10.0.0.1
    // there: parse_packet storing the source address.
    let rc = &v[3];
    assert_eq!(rc["reason"], "watchpoint");
    assert_eq!(rc["old"], "00000000");
    assert_eq!(rc["new"], "0a000001");
    assert_eq!(rc["place"]["function"], "parse_packet");
    assert!(
        rc["place"]["source"].as_str().unwrap().contains("saddr4"),
        "{rc}"
    );
    assert!(
        rc["place"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*(u32 *)"),
        "{rc}"
    );
    assert_eq!(v[4]["frames"].as_array().unwrap().len(), 2);
    // Forward again, the same write stops it one step later.
    assert_eq!(v[5]["reason"], "watchpoint");
    assert_eq!(
        v[5]["place"]["step"].as_u64().unwrap(),
        rc["place"]["step"].as_u64().unwrap() + 1
    );
}

#[test]
fn origin_follows_a_stack_value_back_to_the_packet() {
    let out = replay(
        &xdp_fw(),
        &[],
        &["break xdp_fw.bpf.c:210", "c", "origin *(u32 *)(r10 - 12)"],
    );
    let text: Vec<&str> = out.lines().collect();
    let at = text
        .iter()
        .position(|l| l.starts_with("origin of"))
        .unwrap();
    assert_eq!(text[at], "origin of *(u32 *)(r10 - 12) (4 bytes at fp-12):");
    assert!(text[at + 1].contains("(xdp_fw.bpf.c:161)"), "{out}");
    assert!(text[at + 1].contains("<- spilled r4"), "{out}");
    assert_eq!(*text.last().unwrap(), "  => read from the packet");
    let (code, v) = replay_json_status(
        &xdp_fw(),
        &[],
        &[
            "break xdp_fw.bpf.c:210",
            "c",
            "origin *(u32 *)(r10 - 12)",
            "origin r6 + 1",
        ],
    );
    assert_eq!(code, 1, "the last command fails");
    let o = &v[2];
    assert_eq!(o["kind"], "origin");
    assert_eq!(o["end"], "read from the packet");
    let chain = o["chain"].as_array().unwrap();
    assert!(chain.len() >= 2);
    assert!(
        chain[1]["what"]
            .as_str()
            .unwrap()
            .starts_with("read from the packet")
    );
    assert_eq!(v[3]["kind"], "error");
    assert!(
        v[3]["message"].as_str().unwrap().contains("computed value"),
        "{}",
        v[3]
    );
}

#[test]
fn switching_invocation_keeps_breakpoints() {
    let (code, v) = replay_json_status(
        &xdp_fw(),
        &[],
        &[
            "b xdp_fw.bpf.c:210",
            "watch r6",
            "invocation 5",
            "info breakpoints",
            "c",
            "info invocations",
            "invocation 0",
            "invocation 99",
        ],
    );
    assert_eq!(code, 1, "invocation 99 fails");
    assert_eq!(v[2]["kind"], "switched");
    assert_eq!(v[2]["invocation"], 5);
    assert_eq!(v[2]["place"]["step"], 0);
    assert!(v[2]["notes"][0].as_str().unwrap().contains("watchpoint"));
    assert_eq!(v[3]["breakpoints"][0]["location"], "xdp_fw.bpf.c:210");
    assert_eq!(v[4]["reason"], "breakpoint");
    assert_eq!(v[5]["current"], 5);
    assert_eq!(v[5]["total"], 12);
    let invs = v[5]["invocations"].as_array().unwrap();
    assert_eq!(invs.len(), 12);
    assert_eq!(invs[1]["retval_name"], "XDP_DROP");
    assert_eq!(invs[5]["current"], true);
    assert_eq!(v[6]["invocation"], 0);
    assert_eq!(v[7]["kind"], "error");
    assert!(
        v[7]["message"]
            .as_str()
            .unwrap()
            .contains("there is no invocation 99")
    );
}

#[test]
fn json_objects_have_the_documented_fields() {
    let v = replay_json(
        &xdp_fw(),
        &[],
        &[
            "s 5",
            "info registers",
            "p r10 - 8",
            "x/8xb pkt",
            "x/2xw pkt + 12",
            "info frame",
            "info line",
            "list",
            "disas",
            "info maps",
            "info watchpoints",
            "help step",
            "c",
        ],
    );
    let kinds: Vec<&str> = v.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "stopped",
            "registers",
            "value",
            "memory",
            "memory",
            "frame",
            "line",
            "source",
            "disassembly",
            "maps",
            "watchpoints",
            "help",
            "stopped"
        ]
    );
    let place = &v[0]["place"];
    for f in [
        "step",
        "program",
        "program_name",
        "insn",
        "function",
        "file",
        "line",
        "source",
        "text",
        "ended",
    ] {
        assert!(place.get(f).is_some(), "place has no {f}: {place}");
    }
    assert_eq!(v[0]["reason"], "done");
    assert_eq!(place["step"], 5);
    let regs = v[1]["registers"].as_array().unwrap();
    assert_eq!(regs.len(), 11);
    assert_eq!(regs[10]["name"], "r10");
    assert_eq!(regs[10]["points_to"], "fp");
    assert_eq!(
        v[2]["text"].as_str().unwrap().split(' ').next().unwrap(),
        "fp-8"
    );
    // The packet starts with the destination MAC 02:00:00:00:00:02.
    assert_eq!(v[3]["bytes"], "0200000000020200");
    assert_eq!(v[3]["place"], "pkt");
    assert_eq!(
        v[4]["units"],
        serde_json::json!(["0x00450008", "0x34123900"])
    );
    assert_eq!(v[5]["level"], 0);
    assert!(
        v[5]["stack"].as_str().unwrap().len() == 2 * v[5]["stack_size"].as_u64().unwrap() as usize
    );
    assert!(
        v[7]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["current"] == true)
    );
    assert!(
        v[8]["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["current"] == true)
    );
    assert_eq!(v[9]["maps"][0]["name"], "blocked_src");
    assert_eq!(v[11]["commands"][0]["aliases"][0], "s");
    assert_eq!(v[12]["reason"], "exited");
    assert_eq!(v[12]["r0"], 2);
    assert_eq!(v[12]["name"], "XDP_PASS");
    assert_eq!(v[12]["place"]["ended"], true);
}

#[test]
fn the_stop_line_names_step_instruction_source_and_text() {
    let out = replay(
        &xdp_fw(),
        &[],
        &["step 3", "rs", "reverse-step 10", "goto 100000"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "step 3, insn 3 (xdp_fw.bpf.c:199): r1 = 0x0");
    assert_eq!(lines[1], "199\t\tstruct pkt_info info = {};");
    assert_eq!(
        lines[2],
        "step 2, insn 2 (xdp_fw.bpf.c:199): *(u32 *)(r10 - 0x8) = w1"
    );
    assert_eq!(lines[4], "reached the start of the invocation");
    assert_eq!(lines[5], "step 0, insn 0 (xdp_fw.bpf.c:197): r6 = r1");
    assert_eq!(lines[7], "exited: r0 = 2 (XDP_PASS)");
    assert!(lines[8].ends_with("): exit"), "{out}");
}

#[test]
fn bad_commands_say_what_is_wrong_and_the_rest_still_runs() {
    let (code, out, err) = bpfrr(&[
        "replay",
        &xdp_fw(),
        "-x",
        "frobnicate",
        "-x",
        "print r99",
        "-x",
        "b nowhere.c:1",
        "-x",
        "x/0x pkt",
        "-x",
        "step",
    ]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    for l in &lines[..4] {
        assert!(l.starts_with("error: "), "{out}");
    }
    assert!(lines[0].contains("`frobnicate` is not a command"));
    assert!(
        lines[2].contains("no instruction is on line 1 of nowhere.c"),
        "{out}"
    );
    assert!(lines[4].starts_with("step 1, insn 1"));
    assert_eq!(err.trim(), "bpfrr: 4 of 5 commands failed (see above)");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn a_corrupt_or_missing_trace_is_one_clear_error_line() {
    let good = std::fs::read(xdp_fw()).unwrap();
    let truncated = scratch("truncated.bpfrr");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let flipped = scratch("flipped.bpfrr");
    let mut bytes = good.clone();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&flipped, &bytes).unwrap();
    let garbage = scratch("garbage.bpfrr");
    std::fs::write(&garbage, b"this is not a trace at all").unwrap();
    for path in [&truncated, &flipped, &garbage, &scratch("missing.bpfrr")] {
        let p = path.to_str().unwrap();
        for args in [
            vec!["replay", p, "-x", "step"],
            vec!["log", p],
            vec!["diff", p, "0", "1"],
        ] {
            let (code, out, err) = bpfrr(&args);
            assert_eq!(code, 1, "{args:?}");
            assert!(out.is_empty(), "{args:?}: {out}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.starts_with("bpfrr: "), "{err}");
        }
    }
    let (code, _, err) = bpfrr(&["replay", &xdp_fw(), "-i", "12", "-x", "s"]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "bpfrr: there is no invocation 12; the trace has 12 (0 to 11)"
    );
}

#[test]
fn watchpoints_on_packet_bytes_and_map_values_stop_both_ways() {
    let tc = samples().join("traces/tc_rewrite.bpfrr");
    // tc_mark_dscp rewrites the TOS byte (packet offset 15) with bpf_skb_store_bytes.
    let v = replay_json(
        tc.to_str().unwrap(),
        &[],
        &[
            "watch pkt[15:16]",
            "continue",
            "continue",
            "reverse-continue",
        ],
    );
    assert_eq!(v[0]["watching"], "1 byte at pkt+15");
    assert_eq!(v[1]["reason"], "watchpoint");
    assert_eq!(
        (v[1]["old"].as_str(), v[1]["new"].as_str()),
        (Some("00"), Some("b8"))
    );
    assert_eq!(v[2]["reason"], "exited");
    assert_eq!(v[2]["name"], "TC_ACT_OK");
    // Backward it stops before the helper call that wrote it.
    assert_eq!(v[3]["reason"], "watchpoint");
    assert_eq!(v[3]["place"]["text"], "call bpf_skb_store_bytes");
    assert_eq!(
        v[3]["place"]["step"].as_u64().unwrap() + 1,
        v[1]["place"]["step"].as_u64().unwrap()
    );

    // xdp_fw counts bytes in the rule_stats map value.
    let v = replay_json(
        &xdp_fw(),
        &[],
        &[
            "b 112",
            "c",
            "watch *(u64 *)(r0 + 8)",
            "c",
            "rc",
            "p *(struct xdp_md *)ctx",
        ],
    );
    assert_eq!(v[2]["watching"], "8 bytes at map_value(rule_stats)+8");
    assert_eq!(v[3]["reason"], "watchpoint");
    assert_eq!(v[3]["new"], "4700000000000000"); // 71, the packet's length
    assert_eq!(v[4]["reason"], "watchpoint");
    assert_eq!(v[4]["place"]["insn"], 112);
    assert!(
        v[5]["text"]
            .as_str()
            .unwrap()
            .contains(".ingress_ifindex = 1"),
        "{}",
        v[5]
    );
}
