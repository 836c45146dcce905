//! Render tests of every pane of the replay UI with ratatui's TestBackend,
//! on the committed sample trace samples/traces/xdp_fw.bpfrr: what the
//! buffer shows after real movements through the session.

// The UI lives in the binary crate; its modules are compiled into this
// test too, and not every item is used by the tests.
#![allow(dead_code)]

#[path = "../src/commands/mod.rs"]
mod commands;
#[path = "../src/jit_view.rs"]
mod jit_view;
#[path = "../src/ui/mod.rs"]
mod ui;

use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use bpfrr_trace::trace::Trace;
use ui::debuggee::Motion;
use ui::pane::PaneId;
use ui::{App, Debuggee, Theme};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/traces")
        .join(name)
}

fn open(name: &str) -> (Trace, PathBuf) {
    let p = sample(name);
    (Trace::open(&p).expect("sample trace opens"), p)
}

fn app<'t>(trace: &'t Trace, path: &Path, inv: u64) -> App<'t> {
    let d = Debuggee::new(trace, Some(path), inv).expect("debuggee");
    App::new(d, Theme { color: true })
}

fn render(app: &mut App<'_>, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| app.draw(f)).expect("draw");
    t.backend().buffer().clone()
}

fn text(b: &Buffer) -> String {
    let mut s = String::new();
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            s.push_str(b[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn key(app: &mut App<'_>, c: char) {
    app.key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    app.finish_job();
}

fn code(app: &mut App<'_>, k: KeyCode) {
    app.key(KeyEvent::new(k, KeyModifiers::NONE));
}

/// Steps until the current instruction reads the packet.
fn step_to_packet_load(app: &mut App<'_>) {
    for _ in 0..200 {
        if let Some(a) = app.d.view.access
            && !a.write
            && ui::debuggee::packet_offset(&app.d.session, a.addr).is_some()
        {
            return;
        }
        key(app, 's');
    }
    panic!("no packet load within 200 steps");
}

#[test]
fn every_pane_shows_at_200x50() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    let s = text(&render(&mut a, 200, 50));
    for title in [
        "Source",
        "Disassembly",
        "Registers",
        "Explain",
        "Stack",
        "Packet / context",
        "Maps",
        "Helper calls / printk",
        "Invocations",
        "Verifier",
        "JIT",
    ] {
        assert!(s.contains(title), "pane {title} missing:\n{s}");
    }
    // Status line: trace, invocation, step, pc.
    assert!(s.contains("xdp_fw.bpfrr  inv 0/12  step 0"), "{s}");
    // Source from the file next to the trace (samples/xdp_fw.bpf.c).
    assert!(s.contains("int xdp_firewall(struct xdp_md *ctx)"), "{s}");
    // Registers at entry: r1 is the context, r10 the frame pointer.
    assert!(s.contains("r1  0x") && s.contains(" ctx"), "{s}");
    assert!(s.contains("fp  0x"), "{s}");
    // Invocations with their verdicts.
    assert!(s.contains("XDP_PASS") && s.contains("XDP_DROP"), "{s}");
    // Maps decoded with names and types.
    assert!(s.contains("blocked_src (hash"), "{s}");
    assert!(s.contains("rule_stats (percpu_array"), "{s}");
    // Recorded helper calls by name.
    assert!(s.contains("bpf_map_lookup_elem -> "), "{s}");
    // Stack of frame 0.
    assert!(s.contains("frame 0: xdp_firewall"), "{s}");
}

#[test]
fn compact_layout_at_80x24_is_usable() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    let s = text(&render(&mut a, 80, 24));
    for title in ["Explain", "Disassembly", "Registers", "Packet / context"] {
        assert!(s.contains(title), "pane {title} missing at 80x24:\n{s}");
    }
    assert!(s.contains("inv 0/12"), "{s}");
    // Tab to the source pane: it replaces the disassembly in the code slot.
    code(&mut a, KeyCode::BackTab);
    code(&mut a, KeyCode::BackTab);
    code(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, PaneId::Source);
    let s = text(&render(&mut a, 80, 24));
    assert!(s.contains("Source") && !s.contains("Disassembly"), "{s}");
    // Focus the maps: it takes the auxiliary slot.
    a.set_focus(PaneId::Maps);
    let s = text(&render(&mut a, 80, 24));
    assert!(s.contains("Maps") && s.contains("blocked_src"), "{s}");
}

#[test]
fn step_marks_changed_registers_and_reverse_step_undoes() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    let regs0: Vec<u64> = a.d.session.regs().to_vec();
    key(&mut a, 's');
    assert_eq!(a.d.view.position, 1);
    let changed: Vec<usize> = (0..11).filter(|r| a.d.view.changed[*r]).collect();
    assert!(
        !changed.is_empty(),
        "the first instruction changes a register"
    );
    a.set_focus(PaneId::Registers);
    let s = text(&render(&mut a, 200, 50));
    let r = changed[0];
    let name = if r == 10 {
        "fp".to_string()
    } else {
        format!("r{r}")
    };
    assert!(
        s.contains(&format!("*{name:<3} 0x")),
        "changed register {name} not marked:\n{s}"
    );
    assert!(
        s.contains("last step 0"),
        "explain shows the last step:\n{s}"
    );
    key(&mut a, 'S');
    assert_eq!(a.d.view.position, 0);
    assert_eq!(a.d.session.regs(), &regs0[..]);
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("step 0"), "{s}");
}

#[test]
fn explain_and_packet_name_the_bytes_a_load_reads() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    step_to_packet_load(&mut a);
    let e = a.d.view.explain.clone();
    assert!(e.starts_with("load "), "{e}");
    assert!(e.contains("from the packet at offset "), "{e}");
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("from the packet at offset"), "{s}");
    assert!(s.contains("this instruction reads bytes"), "{s}");
    // Step on to the IPv4 source address load of a packet that has one.
    for _ in 0..400 {
        if a.d.view.explain.contains("IPv4 source address") || a.d.session.at_end() {
            break;
        }
        key(&mut a, 's');
    }
    let e = &a.d.view.explain;
    assert!(
        e.contains("(IPv4 source address 10.")
            || e.contains("(IPv4 source address 192.")
            || e.contains("(IPv4 source address 198.")
            || e.contains("(IPv4 source address 203."),
        "the source address load is named with its value: {e}"
    );
}

#[test]
fn disassembly_names_maps_helpers_and_labels() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    a.set_focus(PaneId::Disasm);
    code(&mut a, KeyCode::Char('/'));
    for c in "map[blocked_src]".chars() {
        code(&mut a, KeyCode::Char(c));
    }
    code(&mut a, KeyCode::Enter);
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("= map[blocked_src] ll"), "{s}");
    assert!(s.contains("call bpf_map_lookup_elem"), "{s}");
    // Jump targets are labels.
    assert!(s.contains("goto +0x") && s.contains("<L"), "{s}");
}

#[test]
fn breakpoint_at_cursor_then_continue_stops_there() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    // Find an instruction this invocation runs (the one at step 25).
    a.d.goto(25);
    let pc = a.d.view.pc;
    a.d.goto(0);
    a.set_focus(PaneId::Disasm);
    // Put the disassembly cursor on it by searching, and set a breakpoint.
    code(&mut a, KeyCode::Char('/'));
    for c in format!("{pc}: ").chars() {
        code(&mut a, KeyCode::Char(c));
    }
    code(&mut a, KeyCode::Enter);
    key(&mut a, 'b');
    assert_eq!(a.message, format!("breakpoint 1 at instruction {pc}"));
    let s = text(&render(&mut a, 200, 50));
    assert!(
        s.contains(&format!("● {pc:>5}: ")),
        "breakpoint marked:\n{s}"
    );
    key(&mut a, 'c');
    assert_eq!(a.d.view.pc, pc);
    assert!(a.message.contains("breakpoint 1 hit"), "{}", a.message);
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains(&format!("●▶{pc:>5}: ")), "{s}");
    // On to the end, then reverse-continue comes back to the breakpoint.
    let hit_at = a.d.view.position;
    key(&mut a, 'c');
    assert!(a.d.session.at_end() || a.d.view.pc == pc, "{}", a.message);
    key(&mut a, 'C');
    assert_eq!(a.d.view.pc, pc, "{}", a.message);
    assert!(a.d.view.position >= hit_at);
    // b on the same line deletes it.
    a.set_focus(PaneId::Disasm);
    key(&mut a, 'b');
    assert!(
        a.message.starts_with("deleted breakpoint 1"),
        "{}",
        a.message
    );
}

#[test]
fn helper_breakpoint_explains_the_call() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    a.d.session.add_breakpoint("bpf_map_lookup_elem").unwrap();
    key(&mut a, 'c');
    assert!(a.message.contains("breakpoint 1 hit"), "{}", a.message);
    let e = &a.d.view.explain;
    assert!(e.starts_with("call bpf_map_lookup_elem(r1=map("), "{e}");
    assert!(e.contains("r2=fp-"), "{e}");
    let s = text(&render(&mut a, 200, 50));
    // The recorded call of this instruction is highlighted in the calls pane.
    assert!(
        s.contains(&format!("@{:<4} bpf_map_lookup_elem", a.d.view.pc)),
        "{s}"
    );
}

#[test]
fn continue_to_the_end_shows_the_verdict() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    key(&mut a, 'c');
    assert!(a.d.session.at_end());
    assert!(a.message.contains("the program returned"), "{}", a.message);
    assert!(a.message.contains("XDP_"), "{}", a.message);
    let s = text(&render(&mut a, 120, 40));
    assert!(s.contains("the program has returned"), "{s}");
    // Stepping on at the end explains why nothing happens.
    key(&mut a, 's');
    assert!(a.message.contains("has ended"), "{}", a.message);
}

#[test]
fn invocations_filter_and_switch() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    a.set_focus(PaneId::Invocations);
    code(&mut a, KeyCode::Char('f'));
    code(&mut a, KeyCode::Char('1'));
    code(&mut a, KeyCode::Enter);
    assert!(
        a.message.contains("4 invocations returned 1"),
        "{}",
        a.message
    );
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("r0 = 1: 4 of 12"), "{s}");
    assert!(!s.contains("-> 2 XDP_PASS"), "only drops are listed:\n{s}");
    code(&mut a, KeyCode::Enter);
    let inv = a.d.invocation;
    assert_ne!(inv, 0);
    assert_eq!(trace.invocation(inv).unwrap().retval.to_native(), 1);
    assert_eq!(a.d.view.position, 0);
    key(&mut a, 'c');
    assert!(a.message.contains("returned 1 (XDP_DROP)"), "{}", a.message);
    code(&mut a, KeyCode::Char('F'));
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("-> 2 XDP_PASS"), "{s}");
}

#[test]
fn help_overlay_lists_every_key() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    key(&mut a, '?');
    assert!(a.help);
    let s = text(&render(&mut a, 120, 40));
    for (k, what) in ui::app::GLOBAL_KEYS {
        assert!(s.contains(k), "key {k} missing from help:\n{s}");
        assert!(
            s.contains(&what[..what.len().min(30)]),
            "{what} missing:\n{s}"
        );
    }
    key(&mut a, 'x');
    assert!(!a.help);
}

#[test]
fn watch_register_stops_when_it_changes() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    a.set_focus(PaneId::Registers);
    // Watch r0 from the registers pane (cursor on r0).
    key(&mut a, 'w');
    assert!(a.message.starts_with("watchpoint 1 on r0"), "{}", a.message);
    key(&mut a, 'c');
    assert!(a.message.contains("watchpoint 1 changed"), "{}", a.message);
    assert!(a.d.view.changed[0]);
}

#[test]
fn goto_prompt_moves_and_stack_shows_slots() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    code(&mut a, KeyCode::Char('g'));
    for c in "40".chars() {
        code(&mut a, KeyCode::Char(c));
    }
    code(&mut a, KeyCode::Enter);
    assert_eq!(a.d.view.position, 40);
    a.set_focus(PaneId::Stack);
    let s = text(&render(&mut a, 200, 50));
    // Inside parse_packet (frame 1, no stack of its own): the caller's slots.
    assert!(s.contains("frame 1: parse_packet"), "{s}");
    assert!(s.contains("fp[0]-8 "), "{s}");
    a.d.goto(3);
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("fp-8 "), "{s}");
}

#[test]
fn no_color_theme_uses_no_colors() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let d = Debuggee::new(&trace, Some(&path), 0).unwrap();
    let mut a = App::new(d, Theme { color: false });
    key(&mut a, 's');
    let b = render(&mut a, 200, 50);
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            let c = &b[(x, y)];
            assert_eq!(c.fg, ratatui::style::Color::Reset, "colour at {x},{y}");
            assert_eq!(c.bg, ratatui::style::Color::Reset, "colour at {x},{y}");
        }
    }
}

#[test]
fn mouse_click_focuses_and_wheel_scrolls() {
    use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    render(&mut a, 200, 50);
    // The invocations pane is at the bottom right at 200x50.
    let click = MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: 190,
        row: 45,
        modifiers: KeyModifiers::NONE,
    };
    a.mouse(click);
    assert_eq!(a.focus, PaneId::Invocations);
    let wheel = MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 20,
        row: 30,
        modifiers: KeyModifiers::NONE,
    };
    a.mouse(wheel);
    render(&mut a, 200, 50);
}

#[test]
fn other_samples_render() {
    for name in ["tc_rewrite.bpfrr", "sock_filter.bpfrr", "cgroup_skb.bpfrr"] {
        let (trace, path) = open(name);
        let mut a = app(&trace, &path, 0);
        for _ in 0..30 {
            key(&mut a, 's');
        }
        let s = text(&render(&mut a, 200, 50));
        assert!(
            s.contains("step 30") || a.d.session.at_end(),
            "{name}:\n{s}"
        );
        let s80 = text(&render(&mut a, 80, 24));
        assert!(s80.contains("Registers"), "{name}:\n{s80}");
        key(&mut a, 'c');
        assert!(a.d.session.at_end(), "{name}: {}", a.message);
    }
}

#[test]
fn motion_names_are_gdb_like() {
    assert_eq!(Motion::ReverseContinue.name(), "reverse-continue");
}

#[test]
fn model_run_opens_the_same_ui() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let obj = root.join("samples/xdp_fw.bpf.o");
    let pcap = std::fs::read(root.join("samples/inputs/xdp_fw.pcap")).expect("sample pcap");
    let packets = bpfrr_trace::pcap::read_packets(&pcap).expect("pcap parses");
    let trace = ui::model_run::model_trace(&obj, "xdp_firewall", &packets, 0).expect("model run");
    assert_eq!(trace.invocation_count(), packets.len() as u64);
    let mut a = app(&trace, &obj, 0);
    let s = text(&render(&mut a, 200, 50));
    assert!(s.contains("int xdp_firewall(struct xdp_md *ctx)"), "{s}");
    assert!(s.contains(&format!("inv 0/{}", packets.len())), "{s}");
    key(&mut a, 'c');
    assert!(a.message.contains("the program returned"), "{}", a.message);
    // A name the object does not have is said, with the names it has.
    let e = ui::model_run::model_trace(&obj, "nope", &packets, 0).unwrap_err();
    assert!(
        e.to_string()
            .contains("has no program `nope`; it has: xdp_firewall"),
        "{e}"
    );
}

#[test]
fn model_runs_of_open_coded_iterators_replay_in_the_ui() {
    // samples/fixtures/iter_num: kfuncs resolved against the kernel's BTF.
    if !Path::new(ui::model_run::KERNEL_BTF).exists() {
        let why = "no kernel BTF: a model run cannot link kfunc calls";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{why}, which CI must have"
        );
        eprintln!("{why}; nothing to check");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let obj = root.join("samples/fixtures/iter_num.bpf.o");
    let packets = vec![vec![2u8; 20], vec![3u8; 20]];
    let trace = ui::model_run::model_trace(&obj, "iter_num", &packets, 0).expect("model run");
    let names: Vec<&str> = trace.programs()[0]
        .kfuncs
        .iter()
        .map(|k| k.name.as_str())
        .collect();
    assert!(names.contains(&"bpf_iter_num_next"), "{names:?}");
    // The model run's kfunc events replay identically, as a recording's do.
    let summary = bpfrr_replayer::replay::check_all(&trace);
    assert!(summary.all_identical() && summary.total == 2, "{summary:?}");
    // 20 * 2 = 40 (even, XDP_PASS), 20 * 3 = 60 (even, XDP_PASS).
    let retvals: Vec<u64> = (0..2)
        .map(|i| trace.invocation_owned(i).unwrap().retval)
        .collect();
    assert_eq!(retvals, vec![2, 2]);
    let mut a = app(&trace, &obj, 0);
    // The calls pane names the kfuncs (not `kfunc 12345`).
    let screen = text(&render(&mut a, 200, 60));
    assert!(screen.contains("bpf_iter_num_new -> 0x0"), "{screen}");
    assert!(screen.contains("bpf_iter_num_next -> 0x"), "{screen}");
    // And so does the disassembly.
    assert!(screen.contains("14: call bpf_iter_num_new"), "{screen}");
    key(&mut a, 'c');
    assert!(a.message.contains("the program returned"), "{}", a.message);
}

/// A trace with one XDP invocation looping `iterations` times (5 steps each).
fn looping_trace(iterations: i32) -> Trace {
    use bpfrr_trace::isa::{AluOp, Insn, JmpCond, Operand, Size, Width, encode_all};
    use bpfrr_trace::trace::{Invocation, Program, TraceMeta, TraceWriter};
    let mov = |dst, src| Insn::Alu {
        width: Width::W64,
        op: AluOp::Mov,
        dst,
        src,
    };
    let add = |dst, src| Insn::Alu {
        width: Width::W64,
        op: AluOp::Add,
        dst,
        src,
    };
    let insns = vec![
        mov(7, Operand::Imm(0)),
        // loop (1):
        add(8, Operand::Imm(3)),
        Insn::Store {
            size: Size::DW,
            dst: 10,
            off: -8,
            src: Operand::Reg(8),
        },
        add(7, Operand::Imm(1)),
        mov(0, Operand::Imm(2)),
        Insn::Jump {
            width: Width::W64,
            cond: JmpCond::Lt,
            dst: 7,
            src: Operand::Imm(iterations),
            off: -5,
        },
        Insn::Exit,
    ];
    let program = Program {
        name: "xdp_loop".into(),
        prog_type: 6,
        insns: encode_all(&insns).iter().map(|r| r.to_bytes()).collect(),
        ..Program::default()
    };
    let path = std::env::temp_dir().join(format!("bpfrr-ui-test-{}.bpfrr", std::process::id()));
    let meta = TraceMeta {
        n_cpus: 1,
        ..TraceMeta::default()
    };
    let mut w = TraceWriter::create(&path, meta, vec![program], Vec::new()).unwrap();
    let packet = vec![0u8; 60];
    w.push(Invocation {
        ctx: vec![0; 24],
        packet: Some(packet.clone()),
        packet_meta: Some(Vec::new()),
        retval: 2,
        final_packet: Some(packet),
        ..Invocation::default()
    })
    .unwrap();
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    Trace::from_bytes(bytes).unwrap()
}

#[test]
fn long_continue_runs_in_slices_and_ctrl_c_stops_it() {
    let trace = looping_trace(400_000);
    let d = Debuggee::new(&trace, None, 0).unwrap();
    let mut a = App::new(d, Theme { color: true });
    a.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::NONE));
    assert!(a.job.is_some(), "continue over 2M steps runs as a job");
    // One short slice: it stops part way and says how far it got.
    assert!(a.run_job_slice(std::time::Duration::from_millis(1)));
    assert!(a.message.contains("continue: step "), "{}", a.message);
    assert!(a.message.contains("Ctrl-C to stop"), "{}", a.message);
    let s = text(&render(&mut a, 120, 40));
    assert!(s.contains("running… Ctrl-C or Esc stops"), "{s}");
    // Keys other than Ctrl-C wait for the job.
    a.key(KeyEvent::new(KeyCode::Char('S'), KeyModifiers::NONE));
    a.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(a.job.is_none());
    let at = a.d.view.position;
    assert!(at > 0 && at < 2_000_000, "stopped part way, at {at}");
    assert_eq!(a.message, format!("stopped at step {at}"));
    // Continuing again reaches the end.
    key(&mut a, 'c');
    assert!(a.d.session.at_end(), "{}", a.message);
    assert!(a.message.contains("returned 2 (XDP_PASS)"), "{}", a.message);
}

/// The text inside pane `id` as the last layout of `a` at `w`x`h` placed it.
fn pane_text(a: &mut App<'_>, id: PaneId, w: u16, h: u16) -> String {
    let b = render(a, w, h);
    let (rects, _, _) = a.layout(ratatui::layout::Rect::new(0, 0, w, h));
    let (_, r) = rects
        .iter()
        .find(|(p, _)| *p == id)
        .unwrap_or_else(|| panic!("{id:?} is not on screen at {w}x{h}"));
    let mut s = String::new();
    for y in r.y..r.y + r.height {
        for x in r.x..r.x + r.width {
            s.push_str(b[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn verifier_pane_shows_beliefs_next_to_real_values() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    // At entry the verifier knows r1 is the context and r10 the frame pointer.
    let s = pane_text(&mut a, PaneId::Verifier, 200, 50);
    assert!(
        s.contains("Verifier") && s.contains("beliefs = real values"),
        "{s}"
    );
    assert!(s.contains("r1 ctx = ctx"), "{s}");
    assert!(s.contains("r10 fp0 = fp"), "{s}");
    // Step until the packet bounds are compared: pkt_end and a scalar,
    // each next to the real value.
    let mut seen_pkt_end = false;
    let mut seen_scalar = false;
    for _ in 0..300 {
        key(&mut a, 's');
        let s = pane_text(&mut a, PaneId::Verifier, 200, 50);
        assert!(!s.contains("outside every verifier state"), "{s}");
        for line in s.lines() {
            let Some((states, real)) = line.split_once(" = ") else {
                continue;
            };
            if states.contains("pkt_end") && real.contains("pkt_end") {
                seen_pkt_end = true;
            }
            if states.contains("scalar")
                && real.trim_start().starts_with(|c: char| c.is_ascii_digit())
            {
                seen_scalar = true;
            }
        }
        if seen_pkt_end && seen_scalar {
            break;
        }
    }
    assert!(seen_pkt_end, "no pkt_end state next to its value");
    assert!(seen_scalar, "no scalar state next to its value");
}

#[test]
fn jit_pane_shows_the_native_code_of_the_current_instruction() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    let s = pane_text(&mut a, PaneId::Jit, 200, 50);
    assert!(s.contains("JIT") && s.contains("x86_64 · insn 0"), "{s}");
    // Instruction 0 carries the prologue.
    assert!(s.contains("push rbp"), "{s}");
    assert!(s.contains("mov rbp, rsp"), "{s}");
    // Instruction 6 (`r2 = r10`) is one move from the frame pointer register.
    for _ in 0..6 {
        key(&mut a, 's');
    }
    assert_eq!(a.d.view.pc, 6);
    let s = pane_text(&mut a, PaneId::Jit, 200, 50);
    assert!(s.contains("insn 6") && s.contains("mov rsi, rbp"), "{s}");
    assert!(!s.contains("push rbp"), "{s}");
}

#[test]
fn verifier_and_jit_panes_without_log_or_image_say_so() {
    let trace = looping_trace(3);
    let d = Debuggee::new(&trace, None, 0).unwrap();
    let mut a = App::new(d, Theme { color: true });
    let s = pane_text(&mut a, PaneId::Verifier, 200, 50);
    assert!(
        s.contains("the trace holds no verifier log for this program"),
        "{s}"
    );
    let s = pane_text(&mut a, PaneId::Jit, 200, 50);
    assert!(s.contains("has no JIT image"), "{s}");
}

#[test]
fn verifier_and_jit_panes_are_reachable_by_keys_and_tab() {
    let (trace, path) = open("xdp_fw.bpfrr");
    let mut a = app(&trace, &path, 0);
    key(&mut a, '0');
    assert_eq!(a.focus, PaneId::Verifier);
    // The compact layout brings the focused pane into its auxiliary slot.
    let s = text(&render(&mut a, 80, 24));
    assert!(s.contains("Verifier") && s.contains("r1 ctx = ctx"), "{s}");
    key(&mut a, 'J');
    assert_eq!(a.focus, PaneId::Jit);
    let s = text(&render(&mut a, 80, 24));
    assert!(s.contains("JIT") && s.contains("push rbp"), "{s}");
    // Tab order: ... Invocations, Verifier, JIT, then back to Source.
    key(&mut a, '9');
    assert_eq!(a.focus, PaneId::Invocations);
    code(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, PaneId::Verifier);
    code(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, PaneId::Jit);
    code(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, PaneId::Source);
    code(&mut a, KeyCode::BackTab);
    assert_eq!(a.focus, PaneId::Jit);
    // The help overlay lists them with their keys.
    key(&mut a, '?');
    let s = text(&render(&mut a, 120, 40));
    assert!(s.contains("0 Verifier") && s.contains("J JIT"), "{s}");
    assert!(s.contains("scroll the native instructions"), "{s}");
}
