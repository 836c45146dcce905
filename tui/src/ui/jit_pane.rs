//! The JIT pane: the native instructions the kernel's JIT made of the
//! current BPF instruction (capstone disassembly of the recorded image).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use bpfrr_replayer::jit::Precision;

use super::debuggee::Debuggee;
use super::pane::{Action, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;
use crate::jit_view::{JitView, NOT_EXACT};

#[derive(Default)]
pub struct JitPane {
    /// Per program of the trace: its disassembled image, made on first use.
    views: Vec<Option<Result<JitView, String>>>,
    scroll: u16,
}

impl JitPane {
    pub fn new() -> JitPane {
        JitPane::default()
    }

    fn view(&mut self, d: &Debuggee<'_>, prog: usize) -> Result<&JitView, String> {
        let programs = d.trace.programs();
        let Some(p) = programs.get(prog) else {
            return Err(format!("the trace has no program {prog}"));
        };
        if self.views.len() < programs.len() {
            self.views.resize_with(programs.len(), || None);
        }
        self.views[prog]
            .get_or_insert_with(|| JitView::new(p))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The pane's lines for instruction `pc` of program `prog`, and the title's extra.
    fn lines(&mut self, d: &Debuggee<'_>, t: &Theme, width: u16) -> (Vec<Line<'static>>, String) {
        let (prog, pc) = (d.view.prog, d.view.pc);
        let view = match self.view(d, prog) {
            Ok(v) => v,
            Err(e) => return (vec![Line::from(Span::styled(e, t.dim()))], String::new()),
        };
        let extra = format!("{} · insn {pc}", view.arch);
        if view.map.precision != Precision::Exact {
            return (vec![Line::from(Span::styled(NOT_EXACT, t.dim()))], extra);
        }
        let natives = view.for_insn(pc);
        if natives.is_empty() {
            let line = "the verifier removed this instruction: it has no native code";
            return (vec![Line::from(Span::styled(line, t.dim()))], extra);
        }
        let lines = natives
            .iter()
            .map(|n| {
                let mut spans = vec![Span::styled(format!("{:>5x}  ", n.addr), t.dim())];
                // The bytes only where they leave room for the instruction.
                if width >= 64 {
                    let bytes: Vec<String> = n.bytes.iter().map(|b| format!("{b:02x}")).collect();
                    spans.push(Span::styled(format!("{:<24} ", bytes.join(" ")), t.dim()));
                }
                spans.push(Span::styled(n.text.clone(), t.plain()));
                Line::from(spans)
            })
            .collect();
        (lines, extra)
    }
}

impl Pane for JitPane {
    fn id(&self) -> PaneId {
        PaneId::Jit
    }

    fn moved(&mut self, _d: &Debuggee<'_>) {
        self.scroll = 0;
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let inner = block(PaneId::Jit, "", t, focused).inner(area);
        let (lines, extra) = self.lines(d, t, inner.width);
        let b = block(PaneId::Jit, &clip(&extra, 40), t, focused);
        f.render_widget(b, area);
        let max = (lines.len() as u16).saturating_sub(inner.height);
        self.scroll = self.scroll.min(max);
        f.render_widget(Paragraph::new(lines).scroll((self.scroll, 0)), inner);
    }

    fn event(&mut self, ev: PaneEvent, _d: &Debuggee<'_>) -> Action {
        use crossterm::event::KeyCode::*;
        match ev {
            PaneEvent::Scroll(k) => {
                self.scroll = (self.scroll as i32 + k).max(0) as u16;
                Action::None
            }
            PaneEvent::Key(k) => match k.code {
                Down | Char('j') => {
                    self.scroll = self.scroll.saturating_add(1);
                    Action::None
                }
                Up | Char('k') => {
                    self.scroll = self.scroll.saturating_sub(1);
                    Action::None
                }
                _ => Action::Unhandled,
            },
            PaneEvent::Click { .. } => Action::None,
        }
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[("↑↓ j k", "scroll the native instructions")]
    }
}
