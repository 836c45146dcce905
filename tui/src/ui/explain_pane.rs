//! The explain pane: the sentence of [`super::explain`] for the current
//! instruction, the source line, and what the last step changed.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::debuggee::Debuggee;
use super::pane::{Action, Pane, PaneEvent, PaneId, block};
use super::theme::Theme;

#[derive(Default)]
pub struct ExplainPane {
    scroll: u16,
}

impl ExplainPane {
    pub fn new() -> ExplainPane {
        ExplainPane::default()
    }
}

/// "r3 0x0 -> 0xc0000207, fp-8: 00 00 -> 07 02"
pub fn last_step_text(d: &Debuggee<'_>) -> Option<String> {
    let l = d.view.last.as_ref()?;
    let mut parts: Vec<String> = l
        .regs
        .iter()
        .map(|r| format!("r{} {:#x} -> {:#x}", r.reg, r.old, r.new))
        .collect();
    for m in &l.mem {
        let hex = |b: &[u8]| {
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        parts.push(format!("{}: {} -> {}", m.place, hex(&m.old), hex(&m.new)));
    }
    for c in &l.calls {
        parts.push(call_text(d.session.env(), c));
    }
    parts.extend(l.notes.iter().cloned());
    // The UI's own text names maps in ld_imm64 (`r1 = map[blocked_src] ll`).
    let text = d
        .programs
        .get(l.prog)
        .and_then(|p| p.insns.get(l.pc).cloned().flatten())
        .unwrap_or_else(|| l.text.clone());
    Some(if parts.is_empty() {
        format!("step {} ({text}) changed nothing", l.step)
    } else {
        format!("step {} ({text}): {}", l.step, parts.join(", "))
    })
}

impl Pane for ExplainPane {
    fn id(&self) -> PaneId {
        PaneId::Explain
    }

    fn moved(&mut self, _d: &Debuggee<'_>) {
        self.scroll = 0;
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let b = block(PaneId::Explain, "", t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{}: ", d.view.pc), t.dim()),
            Span::styled(d.view.explain.clone(), t.plain()),
        ])];
        if let Some(l) = d.session.line() {
            lines.push(Line::from(vec![
                Span::styled(
                    format!("{}:{}  ", l.file.rsplit('/').next().unwrap_or(""), l.line),
                    t.dim(),
                ),
                Span::styled(l.text.trim().to_string(), t.name()),
            ]));
        }
        if let Some(s) = last_step_text(d) {
            lines.push(Line::from(Span::styled(format!("last {s}"), t.changed())));
        }
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((self.scroll, 0)),
            inner,
        );
    }

    fn event(&mut self, ev: PaneEvent, _d: &Debuggee<'_>) -> Action {
        match ev {
            PaneEvent::Scroll(k) => {
                self.scroll = (self.scroll as i32 + k).max(0) as u16;
                Action::None
            }
            PaneEvent::Key(k) => match k.code {
                crossterm::event::KeyCode::Down | crossterm::event::KeyCode::Char('j') => {
                    self.scroll = self.scroll.saturating_add(1);
                    Action::None
                }
                crossterm::event::KeyCode::Up | crossterm::event::KeyCode::Char('k') => {
                    self.scroll = self.scroll.saturating_sub(1);
                    Action::None
                }
                _ => Action::Unhandled,
            },
            PaneEvent::Click { .. } => Action::None,
        }
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[("↑↓ j k", "scroll the explanation")]
    }
}

/// `bpf_map_lookup_elem -> 0` for a call the last step made.
pub fn call_text<E: bpfrr_replayer::session::SessionEnv>(
    env: &E,
    c: &bpfrr_replayer::vm::CallRecord,
) -> String {
    use bpfrr_replayer::vm::HelperOutcome;
    let name = crate::commands::view::callee_name(env, c);
    match c.outcome {
        HelperOutcome::Return(v) => format!("{name} returned {v:#x}"),
        HelperOutcome::KeepR0 => format!("{name} returned (r0 unchanged)"),
        HelperOutcome::TailCall(p) => format!("{name}: tail call to program {p}"),
        HelperOutcome::Exit(v) => format!("{name} ended the program with {v}"),
        HelperOutcome::Callback { .. } => format!("{name} calls back into the program"),
    }
}
