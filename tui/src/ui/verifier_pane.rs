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

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_replayer::verifier::compare::{Place, ValueCheck};

    fn line_text(l: &Line<'_>) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_value_outside_every_state_is_marked_in_the_flag_style() {
        let t = Theme { color: true };
        let value = |place, value, described: &str, states: &[&str], verdict| ValueCheck {
            place,
            value,
            described: described.into(),
            states: states.iter().map(|s| s.to_string()).collect(),
            verdict,
        };
        let c = StepCheck {
            step: 12,
            prog: 0,
            insn: 7,
            frame: 0,
            visits: 2,
            candidates: vec![3, 9],
            relaxed: false,
            coverage: Coverage::Checked,
            values: vec![
                value(
                    Place::Reg(2),
                    14,
                    "14",
                    &["scalar(umax=20)"],
                    Verdict::Inside,
                ),
                value(
                    Place::Reg(3),
                    99,
                    "99",
                    &["scalar(umax=20)", "0"],
                    Verdict::Outside,
                ),
            ],
        };
        let lines = check_lines(&c, &t, 80);
        let texts: Vec<String> = lines.iter().map(line_text).collect();
        assert_eq!(texts[0], "insn 7 frame 0: 2 verifier visits");
        assert_eq!(texts[1], "    r2 scalar(umax=20) = 14");
        assert_eq!(
            texts[2],
            "    r3 scalar(umax=20) | 0 = 99  ✗ outside every verifier state"
        );
        let mark = lines[2].spans.last().unwrap();
        assert_eq!(mark.style, t.breakpoint());
        assert_eq!(c.flags().len(), 1);
    }

    #[test]
    fn an_unchecked_program_is_one_sentence() {
        let c = StepCheck {
            step: 0,
            prog: 0,
            insn: 0,
            frame: 0,
            visits: 0,
            candidates: Vec::new(),
            relaxed: true,
            coverage: Coverage::Unchecked(bpfrr_replayer::verifier::compare::Unchecked::NoLog),
            values: Vec::new(),
        };
        let lines = check_lines(&c, &Theme { color: false }, 80);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            line_text(&lines[0]),
            "the trace holds no verifier log for this program"
        );
    }
}
