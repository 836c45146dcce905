//! The helper calls pane: the invocation's recorded helper, kfunc and tail
//! calls with the instruction that made them, their recorded result and
//! the bytes they wrote; then the bpf_printk output. The calls of the
//! current instruction are highlighted.

use bpfrr_replayer::session::SessionEnv;
use bpfrr_trace::trace::EventKind;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::debuggee::Debuggee;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct CallsPane {
    list: ListState,
    height: usize,
}

impl CallsPane {
    pub fn new() -> CallsPane {
        CallsPane::default()
    }
}

impl Pane for CallsPane {
    fn id(&self) -> PaneId {
        PaneId::Calls
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let env = d.session.env();
        let calls = env.calls();
        let b = block(
            PaneId::Calls,
            &format!("{} recorded, {} printk", calls.len(), d.printk.len()),
            t,
            focused,
        );
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        let w = inner.width as usize;
        let mut lines: Vec<Line> = Vec::new();
        let last_pcs: Vec<usize> = d
            .view
            .last
            .iter()
            .filter(|l| !l.calls.is_empty())
            .map(|l| l.pc)
            .collect();
        for (i, c) in calls.iter().enumerate() {
            let outs: Vec<String> = c
                .outputs
                .iter()
                .map(|(arg, b)| {
                    let shown: String = b.iter().take(8).map(|x| format!("{x:02x}")).collect();
                    let more = if b.len() > 8 { "…" } else { "" };
                    if *arg == 0 {
                        format!("*r0={shown}{more}")
                    } else {
                        format!("*r{arg}={shown}{more}")
                    }
                })
                .collect();
            // kfuncs by the names the trace gives them.
            let name = match c.kind {
                EventKind::Kfunc => env
                    .kfunc_name(c.id as i32)
                    .map_or_else(|| c.describe(), str::to_string),
                _ => c.describe(),
            };
            let text = format!(
                "#{i:<3} @{:<4} {} -> {:#x}{}",
                c.insn,
                name,
                c.ret,
                if outs.is_empty() {
                    String::new()
                } else {
                    format!("  {}", outs.join(" "))
                }
            );
            let here = c.insn as usize == d.view.pc && !d.session.at_end();
            let style = if here {
                t.touched()
            } else if last_pcs.contains(&(c.insn as usize)) {
                t.changed()
            } else {
                t.plain()
            };
            lines.push(Line::from(Span::styled(clip(&text, w), style)));
        }
        if calls.is_empty() {
            lines.push(Line::from(Span::styled(
                "no helper calls recorded",
                t.dim(),
            )));
        }
        lines.push(Line::from(Span::styled(
            "bpf_printk output",
            t.title(false),
        )));
        if d.printk.is_empty() {
            lines.push(Line::from(Span::styled("  (none yet)", t.dim())));
        }
        for p in &d.printk {
            lines.push(Line::from(Span::raw(clip(
                &format!("  {}", p.trim_end()),
                w,
            ))));
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
        let page = self.height.max(1) as i64;
        let delta = match ev {
            PaneEvent::Scroll(k) => k as i64,
            PaneEvent::Click { .. } => return Action::None,
            PaneEvent::Key(k) => {
                use crossterm::event::KeyCode::*;
                match k.code {
                    Up | Char('k') => -1,
                    Down | Char('j') => 1,
                    PageUp => -page,
                    PageDown => page,
                    _ => return Action::Unhandled,
                }
            }
        };
        self.list.scroll = (self.list.scroll as i64 + delta).max(0) as usize;
        Action::None
    }

    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[("↑↓ j k PgUp PgDn", "scroll")]
    }
}
