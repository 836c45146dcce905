//! Render tests of the `bpfrr verify` interactive view with ratatui's
//! TestBackend, on committed verifier logs
//! (replayer/tests/fixtures/verifier/): a rejected program (opens at the
//! failing instruction, explains it, shows the path) and an accepted one.

// The UI lives in the binary crate; its modules are compiled into this
// test too, and not every item is used by the tests.
#![allow(dead_code)]

#[path = "../src/commands/mod.rs"]
mod commands;
#[path = "../src/jit_view.rs"]
mod jit_view;
#[path = "../src/ui/mod.rs"]
mod ui;

use std::path::PathBuf;

use bpfrr_replayer::verifier::VerifierLog;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;

use ui::Theme;
use ui::verify_view::{Focus, ViewState, draw};

fn fixture(name: &str) -> VerifierLog {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../replayer/tests/fixtures/verifier")
        .join(name);
    let text = std::fs::read_to_string(&p).expect("fixture log reads");
    VerifierLog::parse(&text)
}

fn render(log: &VerifierLog, st: &mut ViewState, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| draw(f, log, st, Theme { color: false }))
        .expect("draw");
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

/// The row of the buffer containing `needle`, with its text.
fn row_with(b: &Buffer, needle: &str) -> Option<(u16, String)> {
    text(b)
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(needle))
        .map(|(y, l)| (y as u16, l.to_string()))
}

fn press(st: &mut ViewState, log: &VerifierLog, code: KeyCode) {
    st.key(log, KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn rejected_program_opens_at_the_failing_instruction_with_its_explanation() {
    let log = fixture("map_value_null.map_value_null.log");
    let mut st = ViewState::new(&log, "map_value_null (xdp): REJECTED");
    assert_eq!(st.selected_insn(), Some(7), "opens at the failing insn");
    let b = render(&log, &mut st, 160, 40);
    let t = text(&b);
    // The failing instruction is marked and selected (reversed).
    let (y, line) = row_with(&b, "✗     7").expect("failing insn row");
    assert!(line.contains("r1 = *(u64 *)(r0 +0)"), "{line}");
    let x = line.find("✗").map(|i| line[..i].chars().count()).unwrap() as u16;
    assert!(
        b[(x, y)]
            .modifier
            .contains(ratatui::style::Modifier::REVERSED),
        "the failing instruction is the selected row"
    );
    // Visited instructions carry a marker and their visit count.
    assert!(
        t.contains("●     6    1×  call bpf_map_lookup_elem#1"),
        "{t}"
    );
    // Source lines are interleaved.
    assert!(t.contains("; *count += 1;"), "{t}");
    // The states at the failing instruction: r0 may be NULL.
    assert!(t.contains("verifier states at insn 7 (1 visits)"), "{t}");
    assert!(t.contains("r0: map_value_or_null"), "{t}");
    assert!(
        t.contains("the verifier failed here: R0 invalid mem access"),
        "{t}"
    );
    // The explanation panel: title, text and fix from the classifier.
    let e = log.error.as_ref().unwrap().kind.explain();
    assert!(t.contains(e.title), "title {:?} in\n{t}", e.title);
    assert!(t.contains("fix: "), "{t}");
}

#[test]
fn path_list_toggles_and_enter_jumps_to_a_step() {
    let log = fixture("map_value_null.map_value_null.log");
    let mut st = ViewState::new(&log, "map_value_null");
    let t = text(&render(&log, &mut st, 160, 40));
    assert!(!t.contains("path to the error ("), "closed at first:\n{t}");
    press(&mut st, &log, KeyCode::Char('p'));
    assert_eq!(st.focus, Focus::Path);
    let b = render(&log, &mut st, 160, 40);
    let t = text(&b);
    let n = log.path_to_error().len();
    assert!(t.contains(&format!("path to the error ({n} steps")), "{t}");
    // Each step with its states: insn 6 set r0 to map_value_or_null.
    let (_, l) = row_with(&b, "insn 6").expect("step at insn 6");
    assert!(l.contains("r0: map_value_or_null"), "{l}");
    // Move to the first step and jump.
    press(&mut st, &log, KeyCode::Home);
    press(&mut st, &log, KeyCode::Enter);
    assert_eq!(st.selected_insn(), Some(0));
    let t = text(&render(&log, &mut st, 160, 40));
    assert!(t.contains("verifier states at insn 0 (1 visits)"), "{t}");
    assert!(t.contains("r1: ctx"), "{t}");
    // p again closes it and gives the focus back to the instructions.
    press(&mut st, &log, KeyCode::Char('p'));
    assert_eq!(st.focus, Focus::Insns);
    let t = text(&render(&log, &mut st, 160, 40));
    assert!(!t.contains("path to the error ("), "{t}");
    // e goes back to the error.
    press(&mut st, &log, KeyCode::Char('e'));
    assert_eq!(st.selected_insn(), Some(7));
}

#[test]
fn accepted_program_shows_states_per_visit_and_moves() {
    let log = fixture("xdp_fw.xdp_firewall.log");
    assert!(log.error.is_none());
    let mut st = ViewState::new(&log, "xdp_firewall (xdp): accepted");
    assert_eq!(st.selected_insn(), Some(0));
    let t = text(&render(&log, &mut st, 160, 40));
    assert!(!t.contains("why the verifier rejected it"), "{t}");
    assert!(t.contains("r1: ctx"), "{t}");
    assert!(t.contains("r10: fp0"), "{t}");
    // Down moves the selection; the states follow.
    press(&mut st, &log, KeyCode::Down);
    press(&mut st, &log, KeyCode::Char('j'));
    let insn = st.selected_insn().unwrap();
    assert_eq!(insn, st.insns[2]);
    let t = text(&render(&log, &mut st, 160, 40));
    let visits = log.states_at(insn).count();
    assert!(
        t.contains(&format!("verifier states at insn {insn} ({visits} visits)")),
        "{t}"
    );
    // An instruction visited on several paths lists each visit with its path.
    let many = *st
        .insns
        .iter()
        .find(|&&i| log.states_at(i).count() > 1)
        .expect("some insn visited twice");
    st.selected = st.insns.iter().position(|&i| i == many).unwrap();
    let t = text(&render(&log, &mut st, 200, 60));
    assert!(t.contains("visit 1  frame"), "{t}");
    assert!(t.contains("visit 2  frame"), "{t}");
    // PgDn / End stay inside the program; p does nothing without an error.
    press(&mut st, &log, KeyCode::End);
    assert_eq!(st.selected, st.insns.len() - 1);
    press(&mut st, &log, KeyCode::PageDown);
    assert_eq!(st.selected, st.insns.len() - 1);
    press(&mut st, &log, KeyCode::Char('p'));
    assert!(!st.path_open);
    // Mouse wheel over the instructions scrolls the selection.
    render(&log, &mut st, 160, 40);
    st.mouse(MouseEvent {
        kind: MouseEventKind::ScrollUp,
        column: 5,
        row: 5,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(st.selected, st.insns.len() - 4);
}

#[test]
fn help_tab_and_quit() {
    let log = fixture("map_value_null.map_value_null.log");
    let mut st = ViewState::new(&log, "x");
    press(&mut st, &log, KeyCode::Char('?'));
    let t = text(&render(&log, &mut st, 120, 30));
    assert!(t.contains("show / hide the path"), "{t}");
    press(&mut st, &log, KeyCode::Char('x'));
    assert!(!st.help && !st.quit);
    press(&mut st, &log, KeyCode::Tab);
    assert_eq!(st.focus, Focus::States);
    press(&mut st, &log, KeyCode::Enter);
    assert_eq!(st.focus, Focus::Insns);
    press(&mut st, &log, KeyCode::Char('q'));
    assert!(st.quit);
}

#[test]
fn garbage_log_renders_one_sentence() {
    let log = VerifierLog::parse("not a verifier log\n\u{0}\u{7f}");
    let mut st = ViewState::new(&log, "x");
    press(&mut st, &log, KeyCode::Down);
    press(&mut st, &log, KeyCode::Char('p'));
    let t = text(&render(&log, &mut st, 100, 20));
    assert!(t.contains("the log shows no instructions"), "{t}");
    // Tiny terminals do not panic.
    render(&log, &mut st, 10, 3);
    let log = fixture("map_value_null.map_value_null.log");
    let mut st = ViewState::new(&log, "x");
    st.path_open = true;
    render(&log, &mut st, 12, 4);
}

#[test]
fn enter_on_a_path_step_scrolls_to_that_visit() {
    for name in [
        "bad_return_value.bad_return_value.log",
        "unreleased_reference.unreleased_reference.log",
    ] {
        let log = fixture(name);
        assert!(log.error.is_some(), "{name} is a rejected program");
        let mut st = ViewState::new(&log, name);
        press(&mut st, &log, KeyCode::Char('p'));
        assert!(st.path_open, "{name}: the path opens");
        press(&mut st, &log, KeyCode::Home);
        for step in 0..st.path.len() {
            press(&mut st, &log, KeyCode::Enter);
            let vi = st.path[step];
            let insn = log.visits[vi].insn;
            assert_eq!(st.selected_insn(), Some(insn), "{name} step {step}");
            assert_eq!(st.highlighted_visit, Some(vi));
            // The visit's block is the top of the states panel, highlighted.
            let ordinal = log.visits[..=vi].iter().filter(|v| v.insn == insn).count();
            let b = render(&log, &mut st, 200, 50);
            let header = format!("visit {ordinal}  frame {}", log.visits[vi].frame);
            let (y, line) = row_with(&b, &header)
                .unwrap_or_else(|| panic!("{name} step {step}: {header:?} shown in\n{}", text(&b)));
            let x = line
                .find(&header)
                .map(|i| line[..i].chars().count())
                .unwrap() as u16;
            assert!(
                b[(x, y)]
                    .modifier
                    .contains(ratatui::style::Modifier::REVERSED),
                "{name} step {step}: the jumped-to visit is highlighted"
            );
            press(&mut st, &log, KeyCode::Down);
        }
    }
}
