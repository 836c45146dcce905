//! The verifier pane: at the current step, what the verifier believed
//! about each live register (and stack slot) next to the real value, with
//! values outside every state it held (soundness flags) highlighted.

use bpfrr_replayer::verifier::compare::{Beliefs, Checker, Coverage, StepCheck, Verdict};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::debuggee::Debuggee;
use super::pane::{Action, Pane, PaneEvent, PaneId, block, clip};
use super::theme::Theme;

#[derive(Default)]
pub struct VerifierPane {
    /// The trace's verifier logs, parsed on first use (once per UI).
    beliefs: Option<Beliefs>,
    /// The comparison at (invocation, position) of `at`.
    check: Option<StepCheck>,
    at: Option<(u64, u64)>,
    scroll: u16,
}

impl VerifierPane {
    pub fn new() -> VerifierPane {
        VerifierPane::default()
    }

    /// Compares the current position, unless it already was.
    fn refresh(&mut self, d: &Debuggee<'_>) {
        let here = (d.invocation, d.session.position());
        if self.at == Some(here) {
            return;
        }
        let beliefs = self
            .beliefs
            .get_or_insert_with(|| Beliefs::from_trace(d.trace));
        // A fresh checker compares against every visit of the instruction
        // (relaxed): the pane shows one position, not a run from step 0.
        self.check = Some(Checker::new(beliefs).check(&d.session));
        self.at = Some(here);
    }
}

/// Why a step was not compared, as one sentence (None: it was).
pub fn coverage_text(c: &StepCheck) -> Option<String> {
    match &c.coverage {
        Coverage::Checked => None,
        Coverage::NoState => Some(
            "the verifier reached this instruction only at pruning points that print no state"
                .into(),
        ),
        Coverage::NeverVisited => Some(format!(
            "soundness flag: the verifier never reached instruction {} in frame {}",
            c.insn, c.frame
        )),
        Coverage::Unchecked(u) => Some(u.message()),
    }
}

/// The pane's lines for one comparison.
pub fn check_lines(c: &StepCheck, t: &Theme, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(why) = coverage_text(c) {
        let style = if c.coverage == Coverage::NeverVisited {
            t.breakpoint()
        } else {
            t.dim()
        };
        lines.push(Line::from(Span::styled(why, style)));
        if c.values.is_empty() {
            return lines;
        }
    }
    let visits = if c.visits == 1 { "visit" } else { "visits" };
    let mut head = format!(
        "insn {} frame {}: {} verifier {visits}",
        c.insn, c.frame, c.visits
    );
    if c.relaxed {
        // From step 0 the run is followed path by path; elsewhere (or past a
        // pruning point) it is compared with every visit, live registers only.
        head.push_str(" (any path: live registers only)");
    }
    lines.push(Line::from(Span::styled(clip(&head, width), t.dim())));
    if c.values.is_empty() {
        lines.push(Line::from(Span::styled(
            "no live registers to compare here",
            t.dim(),
        )));
    }
    for v in &c.values {
        let states = if v.states.is_empty() {
            "?".to_string()
        } else {
            v.states.join(" | ")
        };
        let mut spans = vec![
            Span::styled(format!("{:>6} ", v.place.to_string()), t.name()),
            Span::styled(states, t.plain()),
            Span::styled(" = ", t.dim()),
            Span::styled(v.described.clone(), t.pointer()),
        ];
        match v.verdict {
            Verdict::Inside => {}
            Verdict::Relaxed => spans.push(Span::styled(
                "  (outside, but an imprecise scalar past pruning)",
                t.dim(),
            )),
            Verdict::Outside => spans.push(Span::styled(
                "  ✗ outside every verifier state",
                t.breakpoint(),
            )),
        }
        lines.push(Line::from(spans));
    }
    lines
}

impl Pane for VerifierPane {
    fn id(&self) -> PaneId {
        PaneId::Verifier
    }

    fn moved(&mut self, d: &Debuggee<'_>) {
        self.scroll = 0;
        self.refresh(d);
    }

    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, t: &Theme, focused: bool) {
        self.refresh(d);
        let Some(c) = &self.check else { return };
        let flags = c.flags().len();
        let extra = match (&c.coverage, flags) {
            (Coverage::Unchecked(_), _) => String::new(),
            (_, 0) => "beliefs = real values".to_string(),
            (_, 1) => "1 soundness flag".to_string(),
            (_, n) => format!("{n} soundness flags"),
        };
        let b = block(PaneId::Verifier, &extra, t, focused);
        let inner = b.inner(area);
        f.render_widget(b, area);
        let lines = check_lines(c, t, inner.width as usize);
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
        &[("↑↓ j k", "scroll the verifier's states")]
    }
}
