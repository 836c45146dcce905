//! The invocations pane: every recorded invocation (sequence, CPU,
//! program, return value and its verdict, packet size, calls); Enter jumps
//! to the one under the cursor; `f` filters by return value, `F` clears
//! the filter. Rows are read from the trace only when shown, so a trace
//! with millions of invocations lists as fast as a small one.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::debuggee::{Debuggee, verdict};
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, PromptKind, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct InvocationsPane {
    list: ListState,
    height: usize,
    /// Shown invocations when filtered (None: all).
    filtered: Option<(u64, Vec<u64>)>,
}

impl InvocationsPane {
    pub fn new() -> InvocationsPane {
        InvocationsPane::default()
    }

    fn count(&self, d: &Debuggee<'_>) -> usize {
        match &self.filtered {
            Some((_, v)) => v.len(),
            None => d.trace.invocation_count() as usize,
        }
    }

    fn index_at(&self, row: usize) -> Option<u64> {
        match &self.filtered {
            Some((_, v)) => v.get(row).copied(),
            None => Some(row as u64),
        }
    }

    /// Shows only invocations that returned `retval`.
    pub fn set_filter(&mut self, retval: Option<u64>, d: &Debuggee<'_>) -> String {
        self.list = ListState::default();
        match retval {
            None => {
                self.filtered = None;
                "showing every invocation".into()
            }
            Some(rv) => {
                let v: Vec<u64> = (0..d.trace.invocation_count())
                    .filter(|i| {
                        d.trace
                            .invocation(*i)
                            .is_ok_and(|inv| inv.retval.to_native() == rv)
                    })
                    .collect();
                let msg = format!("{} invocations returned {rv}", v.len());
                self.filtered = Some((rv, v));
                msg
            }
        }
    }
}

impl Pane for InvocationsPane {
    fn id(&self) -> PaneId {
        PaneId::Invocations
    }

    fn moved(&mut self, d: &Debuggee<'_>) {
        if let Some(row) = (0..self.count(d)).find(|r| self.index_at(*r) == Some(d.invocation)) {
            self.list.cursor = row;
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let extra = match &self.filtered {
            Some((rv, v)) => format!("r0 = {rv}: {} of {}", v.len(), d.trace.invocation_count()),
            None => format!("{}", d.trace.invocation_count()),
        };
        let b = block(PaneId::Invocations, &extra, t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        let n = self.count(d);
        self.list.fit(n, self.height);
        let w = inner.width as usize;
        let programs = d.trace.programs();
        let lines: Vec<Line> = (self.list.scroll..n.min(self.list.scroll + self.height))
            .filter_map(|row| {
                let i = self.index_at(row)?;
                let inv = d.trace.invocation(i).ok()?;
                let prog = inv.program.to_native();
                let rv = inv.retval.to_native();
                let name = programs.get(prog as usize).map_or("?", |p| p.name.as_str());
                let v = verdict(d.trace, prog, rv).map_or(String::new(), |v| format!(" {v}"));
                let pkt = inv
                    .packet
                    .as_ref()
                    .map_or(String::new(), |p| format!("  {}B", p.len()));
                let cur = i == d.invocation;
                let text = format!(
                    "{}{i:>5} cpu{} {name} -> {rv}{v}{pkt}  {} calls{}",
                    if cur { "▶" } else { " " },
                    inv.cpu.to_native(),
                    inv.events.len(),
                    if inv.partial { " (partial)" } else { "" }
                );
                let mut style = if cur { t.current() } else { t.plain() };
                if focused && row == self.list.cursor && !cur {
                    style = t.cursor();
                }
                Some(Line::from(Span::styled(clip(&text, w), style)))
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn event(&mut self, ev: PaneEvent, d: &Debuggee<'_>) -> Action {
        let n = self.count(d);
        match ev {
            PaneEvent::Scroll(k) => {
                self.list.move_by(k as i64, n);
                Action::None
            }
            PaneEvent::Click { row, .. } => {
                self.list.cursor = (self.list.scroll + row as usize).min(n.saturating_sub(1));
                Action::None
            }
            PaneEvent::Key(k) => {
                if self.list.key(&k, n, self.height) {
                    return Action::None;
                }
                match k.code {
                    KeyCode::Enter => match self.index_at(self.list.cursor) {
                        Some(i) => Action::SwitchInvocation(i),
                        None => Action::None,
                    },
                    KeyCode::Char('f') => Action::Prompt(PromptKind::Filter, String::new()),
                    KeyCode::Char('F') => Action::Message(self.set_filter(None, d)),
                    _ => Action::Unhandled,
                }
            }
        }
    }

    fn filter(&mut self, rv: Option<u64>, d: &Debuggee<'_>) -> Option<String> {
        Some(self.set_filter(rv, d))
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("↑↓ j k PgUp PgDn", "move the cursor"),
            ("Enter", "replay the invocation under the cursor"),
            ("f", "show only invocations returning a value"),
            ("F", "show every invocation"),
        ]
    }
}
