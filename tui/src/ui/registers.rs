//! The registers pane: r0-r10 in hex and decimal, pointers by region
//! (`pkt+14`, `fp-8`, `map_value(blocked_src)+4`, `ctx`); those the last
//! step changed are highlighted and marked `*`. `w` watches the register
//! under the cursor.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use bpfrr_replayer::session::ValueDesc;

use super::debuggee::Debuggee;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, PromptKind, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct RegistersPane {
    list: ListState,
}

impl RegistersPane {
    pub fn new() -> RegistersPane {
        RegistersPane::default()
    }
}

/// One register's text for a pane `w` columns wide.
pub fn register_text(d: &Debuggee<'_>, r: usize, w: usize) -> (String, bool) {
    let v = d.session.regs()[r];
    let name = if r == 10 {
        "fp".to_string()
    } else {
        format!("r{r}")
    };
    let (desc, is_ptr) = match d.session.describe_value(v) {
        ValueDesc::Pointer { text, .. } => (text, true),
        ValueDesc::Scalar => {
            let s = v as i64;
            let dec = if s < 0 {
                format!("{v} ({s})")
            } else {
                v.to_string()
            };
            (dec, false)
        }
    };
    let text = if w >= 44 {
        format!("{name:<3} {v:#018x} {desc}")
    } else if is_ptr {
        format!("{name:<3} {desc}")
    } else if v < 10 {
        format!("{name:<3} {v}")
    } else if w >= 30 {
        format!("{name:<3} {v:#x} {desc}")
    } else {
        format!("{name:<3} {desc}")
    };
    (text, is_ptr)
}

impl Pane for RegistersPane {
    fn id(&self) -> PaneId {
        PaneId::Registers
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let b = block(
            PaneId::Registers,
            &format!("frame {}", d.session.frames().len() - 1),
            t,
            focused,
        );
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.list.fit(11, inner.height as usize);
        let w = inner.width as usize;
        let lines: Vec<Line> = (0..11)
            .skip(self.list.scroll)
            .take(inner.height as usize)
            .map(|r| {
                let (text, is_ptr) = register_text(d, r, w.saturating_sub(1));
                let changed = d.view.changed[r];
                let mut style = if changed {
                    t.changed()
                } else if is_ptr {
                    t.pointer()
                } else {
                    t.plain()
                };
                if focused && r == self.list.cursor {
                    style = style.patch(t.cursor());
                }
                Line::from(vec![
                    Span::styled(if changed { "*" } else { " " }, t.changed()),
                    Span::styled(clip(&text, w.saturating_sub(1)), style),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn event(&mut self, ev: PaneEvent, _d: &Debuggee<'_>) -> Action {
        match ev {
            PaneEvent::Scroll(k) => {
                self.list.move_by(k as i64, 11);
                Action::None
            }
            PaneEvent::Click { row, .. } => {
                self.list.cursor = (self.list.scroll + row as usize).min(10);
                Action::None
            }
            PaneEvent::Key(k) => {
                if self.list.key(&k, 11, 11) {
                    return Action::None;
                }
                match k.code {
                    KeyCode::Char('w') => Action::Watch(format!("r{}", self.list.cursor)),
                    KeyCode::Char('o') => {
                        Action::Prompt(PromptKind::Command, format!("origin r{}", self.list.cursor))
                    }
                    _ => Action::Unhandled,
                }
            }
        }
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("↑↓ j k", "move the cursor"),
            ("w", "watch the register under the cursor"),
            ("o", "where did this register's value come from (origin)"),
        ]
    }
}
