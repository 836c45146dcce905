//! The packet / context pane: hex dumps of the packet data and the
//! context, the bytes the current instruction touches in reverse video and
//! those the last step wrote highlighted; the header field under the
//! cursor is named (`IPv4 source address 192.0.2.7`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use bpfrr_replayer::vm::{RegionKind, ids, split_address};

use super::debuggee::Debuggee;
use super::packet_fields;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct MemoryPane {
    list: ListState,
    height: usize,
}

impl MemoryPane {
    pub fn new() -> MemoryPane {
        MemoryPane::default()
    }
}

/// Bytes per hex-dump row for an inner width.
pub fn bytes_per_row(width: usize) -> usize {
    // "0000 " + 3 per byte + " " + 1 per byte (ASCII)
    let fit = width.saturating_sub(6) / 4;
    [32, 16, 8, 4].into_iter().find(|n| *n <= fit).unwrap_or(4)
}

struct Dump<'a> {
    title: String,
    bytes: &'a [u8],
    region: u32,
    /// Region offset of bytes[0].
    base: i64,
}

impl Pane for MemoryPane {
    fn id(&self) -> PaneId {
        PaneId::Memory
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let mem = d.session.machine().memory();
        let b = block(PaneId::Memory, "", t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        let w = inner.width as usize;
        let per = bytes_per_row(w);
        let mut dumps = Vec::new();
        if let (Some(data), Some(p)) = (mem.packet_data(), mem.packet()) {
            let (_, base) = split_address(p.data);
            dumps.push(Dump {
                title: format!("packet: {} bytes", data.len()),
                bytes: data,
                region: ids::PACKET,
                base,
            });
        }
        if let Some((id, r)) = mem
            .live_regions()
            .find(|(_, r)| *r.kind() == RegionKind::Context)
        {
            let ty = d
                .session
                .info()
                .context_type
                .and_then(|t| d.session.info().btf.as_ref().map(|b| b.type_name(t)))
                .unwrap_or_else(|| "context".into());
            dumps.push(Dump {
                title: format!("{ty}: {} bytes", r.bytes().len()),
                bytes: r.bytes(),
                region: id,
                base: 0,
            });
        }
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
        let inside = |(id, off, len): (u32, i64, usize), region: u32, at: i64| {
            id == region && off <= at && at < off + len as i64
        };
        let mut lines: Vec<Line> = Vec::new();
        // What the current access reads or writes, in words.
        if let Some(a) = d.view.access
            && let Some(off) = super::debuggee::packet_offset(&d.session, a.addr)
        {
            let field = mem.packet_data().and_then(|pkt| {
                usize::try_from(off)
                    .ok()
                    .and_then(|o| packet_fields::describe(pkt, d.link, o, a.len))
            });
            let verb = if a.write { "writes" } else { "reads" };
            lines.push(Line::from(Span::styled(
                clip(
                    &format!(
                        "this instruction {verb} bytes {off}..{} {}",
                        off + a.len as i64,
                        field.map(|f| format!("({f})")).unwrap_or_default()
                    ),
                    w,
                ),
                t.touched(),
            )));
        }
        for dump in &dumps {
            lines.push(Line::from(Span::styled(
                clip(&dump.title, w),
                t.title(false),
            )));
            for (row, chunk) in dump.bytes.chunks(per).enumerate() {
                let mut spans = vec![Span::styled(format!("{:04x} ", row * per), t.dim())];
                for (k, byte) in chunk.iter().enumerate() {
                    let at = dump.base + (row * per + k) as i64;
                    let mut style = t.plain();
                    if written.iter().any(|x| inside(*x, dump.region, at)) {
                        style = t.changed();
                    }
                    if touched.is_some_and(|x| inside(x, dump.region, at)) {
                        style = style.patch(t.touched());
                    }
                    spans.push(Span::styled(format!("{byte:02x}"), style));
                    spans.push(Span::raw(" "));
                }
                let ascii: String = chunk
                    .iter()
                    .map(|b| {
                        if b.is_ascii_graphic() {
                            *b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                spans.push(Span::raw(" ".repeat((per - chunk.len()) * 3)));
                spans.push(Span::styled(ascii, t.dim()));
                lines.push(Line::from(spans));
            }
            if dump.region != ids::PACKET
                && let (Some(ty), Some(btf)) =
                    (d.session.info().context_type, d.session.info().btf.as_ref())
            {
                for part in btf.format_value(ty, dump.bytes).split(", ") {
                    lines.push(Line::from(Span::styled(
                        clip(&format!("  {part}"), w),
                        t.dim(),
                    )));
                }
            }
        }
        if dumps.is_empty() {
            lines.push(Line::from(Span::styled(
                "this run has no packet and no context",
                t.dim(),
            )));
        }
        self.list.scroll = self
            .list
            .scroll
            .min(lines.len().saturating_sub(self.height));
        let shown: Vec<Line> = lines
            .into_iter()
            .skip(self.list.scroll)
            .take(self.height)
            .collect();
        f.render_widget(Paragraph::new(shown), inner);
    }

    fn event(&mut self, ev: PaneEvent, _d: &Debuggee<'_>) -> Action {
        let page = self.height.max(1);
        match ev {
            PaneEvent::Scroll(k) => {
                self.list.scroll = (self.list.scroll as i64 + k as i64).max(0) as usize;
                self.list.cursor = self.list.scroll;
                Action::None
            }
            PaneEvent::Click { .. } => Action::None,
            PaneEvent::Key(k) => {
                use crossterm::event::KeyCode::*;
                let delta: i64 = match k.code {
                    Up | Char('k') => -1,
                    Down | Char('j') => 1,
                    PageUp => -(page as i64),
                    PageDown => page as i64,
                    _ => return Action::Unhandled,
                };
                self.list.scroll = (self.list.scroll as i64 + delta).max(0) as usize;
                self.list.cursor = self.list.scroll;
                Action::None
            }
        }
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[("↑↓ j k PgUp PgDn", "scroll")]
    }
}
