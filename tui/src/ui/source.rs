//! The source pane: the C text of the file holding the current line, with
//! line numbers; the current line and lines with breakpoints marked. `b`
//! toggles a breakpoint on the line under the cursor.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::debuggee::Debuggee;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct SourcePane {
    list: ListState,
    file: usize,
    height: usize,
}

impl SourcePane {
    pub fn new() -> SourcePane {
        SourcePane::default()
    }

    /// Lines of the shown file that hold a breakpoint site of the current program.
    fn breakpoint_lines(&self, d: &Debuggee<'_>) -> Vec<u32> {
        let Some(file) = d.sources.files.get(self.file) else {
            return Vec::new();
        };
        let Some(p) = d.session.machine().program(d.view.prog) else {
            return Vec::new();
        };
        d.session
            .breakpoints()
            .iter()
            .flat_map(|b| b.sites.iter())
            .filter(|(prog, _)| *prog == d.view.prog)
            .filter_map(|(_, pc)| p.line_of(*pc))
            .filter(|l| l.file == file.name)
            .map(|l| l.line)
            .collect()
    }
}

impl Pane for SourcePane {
    fn id(&self) -> PaneId {
        PaneId::Source
    }

    fn moved(&mut self, d: &Debuggee<'_>) {
        if let Some((file, line)) = d.view.line {
            self.file = file;
            self.list.cursor = line.saturating_sub(1) as usize;
            let h = self.height.max(1);
            if self.list.cursor < self.list.scroll || self.list.cursor >= self.list.scroll + h {
                let rows = d.sources.files.get(file).map_or(0, |f| f.lines.len());
                self.list.center(rows, h);
            }
        }
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let file = d.sources.files.get(self.file);
        let extra = match file {
            Some(sf) if sf.from_disk => sf.short_name().to_string(),
            Some(sf) => format!("{} (lines from BTF)", sf.short_name()),
            None => String::new(),
        };
        let b = block(PaneId::Source, &extra, t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        let Some(sf) = file else {
            f.render_widget(
                Paragraph::new("no source: the trace has no BTF line info").style(t.dim()),
                inner,
            );
            return;
        };
        self.list.fit(sf.lines.len(), self.height);
        let bps = self.breakpoint_lines(d);
        let current = d
            .view
            .line
            .filter(|(fi, _)| *fi == self.file && !d.session.at_end())
            .map(|(_, l)| l);
        let w = inner.width as usize;
        let lines: Vec<Line> = sf
            .lines
            .iter()
            .enumerate()
            .skip(self.list.scroll)
            .take(self.height)
            .map(|(i, text)| {
                let n = i as u32 + 1;
                let is_cur = current == Some(n);
                let mark = match (bps.contains(&n), is_cur) {
                    (true, true) => "●▶",
                    (true, false) => "● ",
                    (false, true) => " ▶",
                    _ => "  ",
                };
                let mut style = if is_cur { t.current() } else { t.plain() };
                if focused && i == self.list.cursor && !is_cur {
                    style = t.cursor();
                }
                Line::from(vec![
                    Span::styled(
                        mark,
                        if bps.contains(&n) {
                            t.breakpoint()
                        } else {
                            t.current()
                        },
                    ),
                    Span::styled(format!("{n:>4} "), t.dim()),
                    Span::styled(clip(text, w.saturating_sub(7)), style),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn event(&mut self, ev: PaneEvent, d: &Debuggee<'_>) -> Action {
        let rows = d.sources.files.get(self.file).map_or(0, |f| f.lines.len());
        match ev {
            PaneEvent::Scroll(k) => {
                self.list.move_by(k as i64, rows);
                Action::None
            }
            PaneEvent::Click { row, .. } => {
                self.list.cursor = (self.list.scroll + row as usize).min(rows.saturating_sub(1));
                Action::None
            }
            PaneEvent::Key(k) => {
                if self.list.key(&k, rows, self.height) {
                    return Action::None;
                }
                match k.code {
                    KeyCode::Char('b') => {
                        let line = self.list.cursor as u32 + 1;
                        match d.first_pc_of_line(self.file, line) {
                            Some(pc) => Action::ToggleBreakpoint(pc),
                            None => Action::Message(format!(
                                "line {line} has no instructions in this program; put the breakpoint on a line with code"
                            )),
                        }
                    }
                    KeyCode::Enter => {
                        let line = self.list.cursor as u32 + 1;
                        match d.first_pc_of_line(self.file, line) {
                            Some(pc) => Action::RunTo(pc),
                            None => Action::Message(format!("line {line} has no instructions")),
                        }
                    }
                    KeyCode::Char('.') => {
                        self.moved(d);
                        Action::None
                    }
                    KeyCode::Char('[') | KeyCode::Char(']') if !d.sources.files.is_empty() => {
                        let n = d.sources.files.len();
                        self.file = if k.code == KeyCode::Char(']') {
                            (self.file + 1) % n
                        } else {
                            (self.file + n - 1) % n
                        };
                        self.list = ListState::default();
                        Action::None
                    }
                    _ => Action::Unhandled,
                }
            }
        }
    }

    fn search(&mut self, text: &str, d: &Debuggee<'_>) -> bool {
        let Some(sf) = d.sources.files.get(self.file) else {
            return false;
        };
        let n = sf.lines.len();
        for k in 1..=n {
            let i = (self.list.cursor + k) % n;
            if sf.lines[i].contains(text) {
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
            ("b", "toggle a breakpoint on the line under the cursor"),
            (
                "Enter",
                "go to the next time the line under the cursor runs",
            ),
            ("[ ]", "previous / next source file"),
            (".", "back to the current line"),
        ]
    }
}
