//! The stack pane: each call frame's stack, 8-byte slot by slot from fp-8
//! down, with the value as a number or a pointer; slots the last step
//! wrote and the slot the current instruction touches are highlighted.
//! `w` watches the slot under the cursor.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use bpfrr_replayer::session::ValueDesc;
use bpfrr_replayer::vm::{RegionKind, split_address};

use super::debuggee::Debuggee;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Row {
    Frame(String),
    /// Frame depth, region id, byte offset of the slot in the region, fp-relative offset.
    Slot {
        depth: usize,
        region: u32,
        at: usize,
        rel: i64,
    },
}

#[derive(Default)]
pub struct StackPane {
    list: ListState,
    height: usize,
}

impl StackPane {
    pub fn new() -> StackPane {
        StackPane::default()
    }

    fn rows(d: &Debuggee<'_>) -> Vec<Row> {
        let s = &d.session;
        let frames = s.frames();
        let mem = s.machine().memory();
        let mut rows = Vec::new();
        for (depth, fr) in frames.iter().enumerate().rev() {
            let start = s
                .machine()
                .program(fr.prog)
                .and_then(|p| p.subprograms().get(fr.subprog))
                .map_or(0, |sp| sp.start);
            let func = s
                .info()
                .function_at(fr.prog, start)
                .map_or_else(|| format!("subprogram {}", fr.subprog), |f| f.name.clone());
            let region = mem
                .live_regions()
                .find(|(_, r)| *r.kind() == RegionKind::Stack { frame: depth as u8 })
                .map(|(id, r)| (id, r.bytes().len()));
            rows.push(Row::Frame(format!(
                "frame {depth}: {func} ({} bytes)",
                fr.stack_size
            )));
            let Some((id, len)) = region else { continue };
            let top = if fr.stack_size > 0 {
                fr.stack_size as usize
            } else {
                len
            };
            let mut at = top;
            while at >= 8 {
                at -= 8;
                rows.push(Row::Slot {
                    depth,
                    region: id,
                    at,
                    rel: at as i64 - top as i64,
                });
            }
        }
        rows
    }
}

impl Pane for StackPane {
    fn id(&self) -> PaneId {
        PaneId::Stack
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let b = block(PaneId::Stack, "", t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        let rows = Self::rows(d);
        self.list.fit(rows.len(), self.height);
        let mem = d.session.machine().memory();
        let written: Vec<(u32, i64, usize)> = d
            .view
            .last
            .iter()
            .flat_map(|l| l.mem.iter())
            .map(|m| {
                let (id, off) = split_address(m.addr);
                (id, off, m.new.len())
            })
            .collect();
        let touched = d.view.access.map(|a| {
            let (id, off) = split_address(a.addr);
            (id, off, a.len)
        });
        let overlaps = |(id, off, len): (u32, i64, usize), region: u32, at: usize| {
            id == region && off < at as i64 + 8 && (at as i64) < off + len as i64
        };
        let w = inner.width as usize;
        let top = d.session.frames().len().saturating_sub(1);
        let lines: Vec<Line> = rows
            .iter()
            .enumerate()
            .skip(self.list.scroll)
            .take(self.height)
            .map(|(i, row)| {
                let cursor = focused && i == self.list.cursor;
                match row {
                    Row::Frame(text) => Line::from(Span::styled(clip(text, w), t.title(false))),
                    Row::Slot {
                        depth,
                        region,
                        at,
                        rel,
                    } => {
                        let bytes = mem
                            .region(*region)
                            .and_then(|r| r.bytes().get(*at..*at + 8))
                            .unwrap_or(&[]);
                        let mut v = 0u64;
                        for (k, b) in bytes.iter().enumerate() {
                            v |= (*b as u64) << (8 * k);
                        }
                        let desc = match d.session.describe_value(v) {
                            ValueDesc::Pointer { text, .. } => text,
                            ValueDesc::Scalar if v == 0 => "0".into(),
                            ValueDesc::Scalar => format!("{v:#x}"),
                        };
                        let name = if *depth == top {
                            format!("fp{rel}")
                        } else {
                            format!("fp[{depth}]{rel}")
                        };
                        let hex: String = bytes
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<Vec<_>>()
                            .join(" ");
                        let text = if w >= 48 {
                            format!("{name:<10} {hex}  {desc}")
                        } else {
                            format!("{name:<8} {desc}")
                        };
                        let mut style = t.plain();
                        if written.iter().any(|x| overlaps(*x, *region, *at)) {
                            style = t.changed();
                        }
                        if touched.is_some_and(|x| overlaps(x, *region, *at)) {
                            style = style.patch(t.touched());
                        }
                        if cursor {
                            style = style.patch(t.cursor());
                        }
                        Line::from(Span::styled(clip(&text, w), style))
                    }
                }
            })
            .collect();
        f.render_widget(Paragraph::new(lines), inner);
    }

    fn event(&mut self, ev: PaneEvent, d: &Debuggee<'_>) -> Action {
        let rows = Self::rows(d);
        match ev {
            PaneEvent::Scroll(k) => {
                self.list.move_by(k as i64, rows.len());
                Action::None
            }
            PaneEvent::Click { row, .. } => {
                self.list.cursor =
                    (self.list.scroll + row as usize).min(rows.len().saturating_sub(1));
                Action::None
            }
            PaneEvent::Key(k) => {
                if self.list.key(&k, rows.len(), self.height) {
                    return Action::None;
                }
                match k.code {
                    KeyCode::Char('w') => match rows.get(self.list.cursor) {
                        Some(Row::Slot { depth, rel, .. })
                            if *depth + 1 == d.session.frames().len() =>
                        {
                            Action::Watch(format!("*(u64 *)(r10 - {})", -rel))
                        }
                        Some(Row::Slot { .. }) => Action::Message(
                            "only slots of the current frame can be watched from here; use :watch with an address".into(),
                        ),
                        _ => Action::None,
                    },
                    _ => Action::Unhandled,
                }
            }
        }
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("↑↓ j k PgUp PgDn", "move the cursor"),
            ("w", "watch the 8-byte slot under the cursor"),
        ]
    }
}
