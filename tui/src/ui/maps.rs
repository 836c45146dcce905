//! The maps pane: every map of the trace with its entries decoded through
//! BTF: the current model (with the values the program holds in memory at
//! this position), and where it differs, the snapshot taken before the
//! recording.

use std::collections::BTreeMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use bpfrr_replayer::vm::RegionKind;
use bpfrr_trace::catalog::MapType;
use bpfrr_trace::trace::SnapshotTime;

use super::debuggee::Debuggee;
use super::pane::{Action, ListState, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct MapsPane {
    list: ListState,
    height: usize,
}

impl MapsPane {
    pub fn new() -> MapsPane {
        MapsPane::default()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Formats `bytes` as BTF type `ty` when known, else as hex.
fn fmt(d: &Debuggee<'_>, ty: Option<u32>, bytes: &[u8]) -> String {
    match (ty, d.session.info().btf.as_ref()) {
        (Some(t), Some(btf)) => btf.format_value(t, bytes),
        _ => hex(bytes),
    }
}

/// One map's lines.
pub fn map_lines(d: &Debuggee<'_>, index: usize) -> Vec<(String, bool)> {
    let Some(def) = d.trace.maps().get(index) else {
        return Vec::new();
    };
    let info = d
        .session
        .info()
        .maps
        .get(index)
        .cloned()
        .unwrap_or_default();
    let vs = def.value_size as usize;
    let t = MapType::from_number(def.map_type);
    let type_name = t.map_or_else(
        || format!("type {}", def.map_type),
        |t| t.name().to_string(),
    );
    let per_cpu = t.is_some_and(|t| t.is_per_cpu());
    let value_text = |values: &[Vec<u8>]| -> String {
        if per_cpu || values.len() > 1 {
            values
                .iter()
                .enumerate()
                .map(|(c, v)| format!("cpu{c} {}", fmt(d, info.value_type, v)))
                .collect::<Vec<_>>()
                .join(" | ")
        } else {
            values
                .first()
                .map_or(String::new(), |v| fmt(d, info.value_type, v))
        }
    };
    // The current model, with values the program holds at this position.
    let mut now: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = d
        .session
        .env()
        .model()
        .maps()
        .get(index)
        .map(|m| m.entries().into_iter().collect())
        .unwrap_or_default();
    for (_, r) in d.session.machine().memory().live_regions() {
        match r.kind() {
            RegionKind::MapValue { map, key } if *map as usize == index => {
                let e = now.entry(key.clone()).or_default();
                if e.len() <= 1 {
                    *e = vec![r.bytes().to_vec()];
                }
            }
            RegionKind::GlobalData { map } if *map as usize == index => {
                now.insert(0u32.to_le_bytes().to_vec(), vec![r.bytes().to_vec()]);
            }
            _ => {}
        }
    }
    let start: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = def
        .snapshots
        .iter()
        .find(|s| s.when == SnapshotTime::Start)
        .map(|s| {
            s.entries
                .iter()
                .map(|e| {
                    let vals = if vs > 0 {
                        e.value.chunks(vs).map(<[u8]>::to_vec).collect()
                    } else {
                        vec![e.value.clone()]
                    };
                    (e.key.clone(), vals)
                })
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![(
        format!(
            "{} ({type_name}, key {} B, value {} B): {} entries, {} at start",
            def.name,
            def.key_size,
            def.value_size,
            now.len(),
            start.len()
        ),
        true,
    )];
    for (k, v) in &now {
        out.push((
            format!("  {} = {}", fmt(d, info.key_type, k), value_text(v)),
            false,
        ));
        match start.get(k) {
            Some(old) if old != v => out.push((format!("      was {}", value_text(old)), false)),
            None if !start.is_empty() => out.push(("      (new since the start)".into(), false)),
            _ => {}
        }
    }
    for (k, old) in start.iter().filter(|(k, _)| !now.contains_key(*k)) {
        out.push((
            format!(
                "  {} deleted, was {}",
                fmt(d, info.key_type, k),
                value_text(old)
            ),
            false,
        ));
    }
    out
}

impl Pane for MapsPane {
    fn id(&self) -> PaneId {
        PaneId::Maps
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        let b = block(PaneId::Maps, "model now / snapshot", t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        self.height = inner.height as usize;
        let w = inner.width as usize;
        let mut lines = Vec::new();
        for i in 0..d.trace.maps().len() {
            lines.extend(map_lines(d, i));
        }
        if lines.is_empty() {
            lines.push(("the program uses no maps".into(), false));
        }
        self.list.scroll = self
            .list
            .scroll
            .min(lines.len().saturating_sub(self.height));
        let shown: Vec<Line> = lines
            .into_iter()
            .skip(self.list.scroll)
            .take(self.height)
            .map(|(s, head)| {
                Line::from(Span::styled(
                    clip(&s, w),
                    if head { t.name() } else { t.plain() },
                ))
            })
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
                    Home => -(self.list.scroll as i64),
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
