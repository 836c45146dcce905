//! The disassembly pane: every instruction of the current program, jump
//! targets as labels, helper and map names; the current instruction and
//! breakpoints marked. `b` toggles a breakpoint at the cursor, Enter goes
//! to the next visit of the instruction under the cursor.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::debuggee::Debuggee;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Row {
    Label(usize),
    Insn(usize),
}

#[derive(Default)]
pub struct DisasmPane {
    list: ListState,
    /// Rows of program `rows_prog`.
    rows: Vec<Row>,
    rows_prog: Option<usize>,
    height: usize,
}

impl DisasmPane {
    pub fn new() -> DisasmPane {
        DisasmPane::default()
    }

    fn ensure_rows(&mut self, d: &Debuggee<'_>) {
        if self.rows_prog == Some(d.view.prog) {
            return;
        }
        self.rows.clear();
        if let Some(p) = d.programs.get(d.view.prog) {
            for (pc, text) in p.insns.iter().enumerate() {
                if text.is_none() {
                    continue;
                }
                if p.labels.contains_key(&pc) {
                    self.rows.push(Row::Label(pc));
                }
                self.rows.push(Row::Insn(pc));
            }
        }
        self.rows_prog = Some(d.view.prog);
    }

    fn row_of(&self, pc: usize) -> usize {
        self.rows
            .iter()
            .position(|r| *r == Row::Insn(pc))
            .unwrap_or(0)
    }

    /// The instruction slot under the cursor (a label row means the instruction after it).
    pub fn cursor_pc(&self) -> Option<usize> {
        match self.rows.get(self.list.cursor)? {
            Row::Insn(pc) | Row::Label(pc) => Some(*pc),
        }
    }
}

impl Pane for DisasmPane {
    fn id(&self) -> PaneId {
        PaneId::Disasm
    }

    fn moved(&mut self, d: &Debuggee<'_>) {
        self.ensure_rows(d);
        self.list.cursor = self.row_of(d.view.pc);
        let h = self.height.max(1);
        if self.list.cursor < self.list.scroll || self.list.cursor >= self.list.scroll + h {
            self.list.center(self.rows.len(), h);
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        self.ensure_rows(d);
        let name = d.programs.get(d.view.prog).map_or("", |p| p.name.as_str());
        let b = block(PaneId::Disasm, name, t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        self.list.fit(self.rows.len(), self.height);
        let Some(p) = d.programs.get(d.view.prog) else {
            return;
        };
        let w = inner.width as usize;
        let lines: Vec<Line> = self
            .rows
            .iter()
            .enumerate()
            .skip(self.list.scroll)
            .take(self.height)
            .map(|(i, row)| match *row {
                Row::Label(pc) => Line::from(Span::styled(
                    clip(
                        &format!("{}:", p.labels.get(&pc).map_or("", |s| s.as_str())),
                        w,
                    ),
                    t.name(),
                )),
                Row::Insn(pc) => {
                    let current = pc == d.view.pc && !d.session.at_end();
                    let bp = d.breakpoint_at(d.view.prog, pc).is_some();
                    let enabled = d.has_enabled_breakpoint(d.view.prog, pc);
                    let mark = match (bp, current) {
                        (true, true) => "●▶",
                        (true, false) => {
                            if enabled {
                                "● "
                            } else {
                                "○ "
                            }
                        }
                        (false, true) => " ▶",
                        (false, false) => "  ",
                    };
                    let text = p.insns[pc].as_deref().unwrap_or("");
                    let body = clip(&format!("{pc:>5}: {text}"), w.saturating_sub(2));
                    let mut style = if current { t.current() } else { t.plain() };
                    if focused && i == self.list.cursor && !current {
                        style = t.cursor();
                    }
                    Line::from(vec![
                        Span::styled(mark, if bp { t.breakpoint() } else { t.current() }),
                        Span::styled(body, style),
                    ])
                }
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn event(&mut self, ev: PaneEvent, d: &Debuggee<'_>) -> Action {
        self.ensure_rows(d);
        let n = self.rows.len();
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
                    KeyCode::Char('b') => match self.cursor_pc() {
                        Some(pc) => Action::ToggleBreakpoint(pc),
                        None => Action::None,
                    },
                    KeyCode::Char('.') => {
                        self.moved(d);
                        Action::None
                    }
                    KeyCode::Enter => match self.cursor_pc() {
                        Some(pc) => Action::RunTo(pc),
                        None => Action::None,
                    },
                    _ => Action::Unhandled,
                }
            }
        }
    }

    fn search(&mut self, text: &str, d: &Debuggee<'_>) -> bool {
        self.ensure_rows(d);
        let Some(p) = d.programs.get(d.view.prog) else {
            return false;
        };
        let n = self.rows.len();
        for k in 1..=n {
            let i = (self.list.cursor + k) % n;
            let hay = match self.rows[i] {
                Row::Label(pc) => p.labels.get(&pc).cloned().unwrap_or_default(),
                Row::Insn(pc) => format!("{pc}: {}", p.insns[pc].as_deref().unwrap_or("")),
            };
            if hay.contains(text) {
                self.list.cursor = i;
                self.list.center(n, self.height.max(1));
                return true;
            }
        }
        false
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("↑↓ j k PgUp PgDn", "move the cursor"),
            ("b", "toggle a breakpoint at the cursor"),
            (
                "Enter",
                "go to the next time the instruction under the cursor runs",
            ),
            (".", "back to the current instruction"),
        ]
    }
}
