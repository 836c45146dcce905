//! The interactive view of `bpfrr verify OBJ`: one program's verifier log.
//!
//! Left, the program's instructions (the kernel's disassembly) with their
//! source lines, a marker on the instructions the verifier visited (and
//! how often) and on the failing one. Right, the verifier's states at the
//! selected instruction: one block per visit. For a rejected program the
//! view opens at the failing instruction, a bottom panel explains the
//! error, and `p` opens the path that reached it.
//!
//! Drawing is a pure function of the parsed log and a [`ViewState`]
//! ([`draw`]), so it is testable with ratatui's TestBackend without a
//! kernel; [`run_verify_view`] puts it on the terminal.

use std::io;
use std::time::Duration;

use crossterm::event::{
    self, DisableMouseCapture, EnableMouseCapture, Event, KeyCode, KeyEvent, KeyEventKind,
    KeyModifiers, MouseEvent, MouseEventKind,
};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use bpfrr_replayer::verifier::{FrameState, InsnVisit, VerifierLog, VisitKind};

use super::theme::Theme;

/// Which panel receives movement keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Insns,
    States,
    Path,
}

/// Everything the view remembers between frames; the log itself is not
/// part of it (it is passed to [`draw`] and [`ViewState::key`]).
#[derive(Clone, Debug)]
pub struct ViewState {
    /// The program's instructions, ascending (those the kernel printed or visited).
    pub insns: Vec<usize>,
    /// How many times the verifier visited each of `insns` (counted once,
    /// not per frame: a long log has 100k visits).
    pub visit_counts: Vec<usize>,
    /// Index into `insns` of the selected instruction.
    pub selected: usize,
    pub focus: Focus,
    /// First line shown in the states panel.
    pub states_scroll: usize,
    /// Whether the path-to-error list is shown.
    pub path_open: bool,
    /// Indices into `log.visits` of the path that reached the error.
    pub path: Vec<usize>,
    /// Selected step of `path`.
    pub path_selected: usize,
    /// The visit (index into `log.visits`) to highlight in the states
    /// panel: the one a path step jumped to.
    pub highlighted_visit: Option<usize>,
    pub help: bool,
    pub quit: bool,
    /// The terminal size at the last draw (for paging and the mouse).
    pub size: Rect,
    /// Program name and verdict, shown in the title bar.
    pub title: String,
}

impl ViewState {
    /// The state a view opens in: at the failing instruction for a rejected
    /// program, else at the first instruction.
    pub fn new(log: &VerifierLog, title: impl Into<String>) -> ViewState {
        let mut insns: Vec<usize> = log.insns.keys().copied().collect();
        insns.extend(log.visits.iter().map(|v| v.insn));
        if let Some(i) = log.error.as_ref().and_then(|e| e.insn) {
            insns.push(i);
        }
        insns.sort_unstable();
        insns.dedup();
        let mut visit_counts = vec![0; insns.len()];
        for v in &log.visits {
            if let Ok(k) = insns.binary_search(&v.insn) {
                visit_counts[k] += 1;
            }
        }
        // path_to_error returns references in log order: find their indices
        // with one forward scan.
        let mut path = Vec::new();
        let mut from = 0;
        for step in log.path_to_error() {
            if let Some(k) = log.visits[from..]
                .iter()
                .position(|v| std::ptr::eq(v, step))
            {
                path.push(from + k);
                from += k + 1;
            }
        }
        let selected = log
            .error
            .as_ref()
            .and_then(|e| e.insn)
            .and_then(|i| insns.iter().position(|&x| x == i))
            .unwrap_or(0);
        let path_selected = path.len().saturating_sub(1);
        ViewState {
            insns,
            visit_counts,
            selected,
            focus: Focus::Insns,
            states_scroll: 0,
            path_open: false,
            path,
            path_selected,
            highlighted_visit: None,
            help: false,
            quit: false,
            size: Rect::new(0, 0, 80, 24),
            title: title.into(),
        }
    }

    /// The selected instruction's index, if the program has any.
    pub fn selected_insn(&self) -> Option<usize> {
        self.insns.get(self.selected).copied()
    }

    fn page(&self) -> usize {
        (self.size.height as usize).saturating_sub(10).max(1)
    }

    fn move_insn(&mut self, delta: isize) {
        if self.insns.is_empty() {
            return;
        }
        let max = self.insns.len() - 1;
        self.selected = self.selected.saturating_add_signed(delta).min(max);
        self.states_scroll = 0;
        self.highlighted_visit = None;
    }

    fn move_path(&mut self, delta: isize) {
        if self.path.is_empty() {
            return;
        }
        let max = self.path.len() - 1;
        self.path_selected = self.path_selected.saturating_add_signed(delta).min(max);
    }

    fn move_focused(&mut self, delta: isize) {
        match self.focus {
            Focus::Insns => self.move_insn(delta),
            Focus::States => {
                self.states_scroll = self.states_scroll.saturating_add_signed(delta);
            }
            Focus::Path => self.move_path(delta),
        }
    }

    fn next_focus(&mut self) {
        self.focus = match self.focus {
            Focus::Insns => Focus::States,
            Focus::States if self.path_open => Focus::Path,
            _ => Focus::Insns,
        };
    }

    /// Selects the instruction of path step `path_selected` and highlights that visit.
    fn jump_to_path_step(&mut self, log: &VerifierLog) {
        let Some(&vi) = self.path.get(self.path_selected) else {
            return;
        };
        let insn = log.visits[vi].insn;
        if let Some(k) = self.insns.iter().position(|&x| x == insn) {
            self.selected = k;
        }
        // Scroll the states panel to the block of that visit.
        let (_, _, at) = states_lines(log, Some(insn), Some(vi), Theme { color: false });
        self.states_scroll = at.unwrap_or(0);
        self.highlighted_visit = Some(vi);
    }

    /// Handles one key.
    pub fn key(&mut self, log: &VerifierLog, k: KeyEvent) {
        if self.help {
            // Any key closes the help; q also quits.
            self.help = false;
            if k.code == KeyCode::Char('q') {
                self.quit = true;
            }
            return;
        }
        let page = self.page() as isize;
        match k.code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Up | KeyCode::Char('k') => self.move_focused(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_focused(1),
            KeyCode::PageUp => self.move_focused(-page),
            KeyCode::PageDown => self.move_focused(page),
            KeyCode::Home | KeyCode::Char('g') => self.move_focused(isize::MIN / 2),
            KeyCode::End | KeyCode::Char('G') => self.move_focused(isize::MAX / 2),
            KeyCode::Tab | KeyCode::BackTab => self.next_focus(),
            KeyCode::Enter if self.focus == Focus::Path => self.jump_to_path_step(log),
            KeyCode::Enter => self.next_focus(),
            KeyCode::Char('p') => {
                self.path_open = !self.path_open && !self.path.is_empty();
                self.focus = if self.path_open {
                    Focus::Path
                } else {
                    Focus::Insns
                };
            }
            KeyCode::Char('e') => {
                if let Some(k) = log
                    .error
                    .as_ref()
                    .and_then(|e| e.insn)
                    .and_then(|i| self.insns.iter().position(|&x| x == i))
                {
                    self.selected = k;
                    self.states_scroll = 0;
                    self.highlighted_visit = None;
                }
            }
            _ => {}
        }
    }

    /// Handles one mouse event: the wheel scrolls the panel under the pointer.
    pub fn mouse(&mut self, m: MouseEvent) {
        let delta = match m.kind {
            MouseEventKind::ScrollUp => -3,
            MouseEventKind::ScrollDown => 3,
            _ => return,
        };
        let l = layout(self.size, self.path_open, false);
        let at = (m.column, m.row).into();
        if l.insns.contains(at) {
            self.move_insn(delta);
        } else if l.path.is_some_and(|r| r.contains(at)) {
            self.move_path(delta);
        } else if l.states.contains(at) {
            self.states_scroll = self.states_scroll.saturating_add_signed(delta);
        }
    }
}

struct Areas {
    title: Rect,
    insns: Rect,
    states: Rect,
    path: Option<Rect>,
    explain: Option<Rect>,
    status: Rect,
}

fn layout(size: Rect, path_open: bool, explain: bool) -> Areas {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(if explain { 8 } else { 0 }),
            Constraint::Length(1),
        ])
        .split(size);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
        .split(rows[1]);
    let (path, states) = if path_open {
        let r = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
            .split(cols[1]);
        (Some(r[0]), r[1])
    } else {
        (None, cols[1])
    };
    Areas {
        title: rows[0],
        insns: cols[0],
        states,
        path,
        explain: explain.then_some(rows[2]),
        status: rows[3],
    }
}

/// Draws the whole view for `log` in `state` (and records the frame size in it).
pub fn draw(f: &mut Frame, log: &VerifierLog, state: &mut ViewState, theme: Theme) {
    state.size = f.area();
    let a = layout(f.area(), state.path_open, log.error.is_some());
    f.render_widget(
        Paragraph::new(Line::styled(state.title.clone(), theme.status())),
        a.title,
    );
    draw_insns(f, a.insns, log, state, theme);
    draw_states(f, a.states, log, state, theme);
    if let Some(r) = a.path {
        draw_path(f, r, log, state, theme);
    }
    if let Some(r) = a.explain {
        draw_explain(f, r, log, theme);
    }
    let status = "q quit  ? help  j/k move  Tab focus  e error  p path to the error";
    f.render_widget(
        Paragraph::new(Line::styled(status, theme.status())),
        a.status,
    );
    if state.help {
        draw_help(f, theme);
    }
}

fn block(title: String, focused: bool, theme: Theme) -> Block<'static> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Span::styled(title, theme.title(focused)))
}

/// The scroll offset that keeps line `cursor` visible in `height` lines, centred when possible.
fn scroll_to(cursor: usize, height: usize, total: usize) -> usize {
    if total <= height {
        return 0;
    }
    cursor.saturating_sub(height / 2).min(total - height)
}

fn draw_insns(f: &mut Frame, r: Rect, log: &VerifierLog, state: &ViewState, theme: Theme) {
    let failing = log.error.as_ref().and_then(|e| e.insn);
    let mut lines: Vec<Line> = Vec::new();
    let mut cursor_line = 0;
    let mut last_source: Option<&str> = None;
    for (k, &insn) in state.insns.iter().enumerate() {
        if let Some(src) = log.sources.get(&insn) {
            let text = src.text.trim();
            if last_source != Some(text) && !text.is_empty() {
                let place = match (&src.file, src.line) {
                    (Some(file), Some(line)) => format!("   [{file}:{line}]"),
                    _ => String::new(),
                };
                lines.push(Line::styled(format!("; {text}{place}"), theme.dim()));
                last_source = Some(text);
            }
        }
        let visits = state.visit_counts.get(k).copied().unwrap_or(0);
        let marker = if failing == Some(insn) {
            "✗"
        } else if visits > 0 {
            "●"
        } else {
            " "
        };
        let count = if visits > 0 {
            format!("{visits}×")
        } else {
            String::new()
        };
        let text = log
            .insn_text(insn)
            .map_or("(not printed by the kernel)", |t| t.text.as_str());
        let line = format!("{marker} {insn:>5} {count:>5}  {text}");
        let style = if k == state.selected {
            cursor_line = lines.len();
            theme.current()
        } else if failing == Some(insn) {
            theme.breakpoint()
        } else if visits == 0 {
            theme.dim()
        } else {
            theme.plain()
        };
        lines.push(Line::styled(line, style));
    }
    if lines.is_empty() {
        lines.push(Line::raw(
            "the log shows no instructions (was it captured at log level 2?)",
        ));
    }
    let height = r.height.saturating_sub(2) as usize;
    let top = scroll_to(cursor_line, height, lines.len());
    let title = format!(" instructions ({}) ", state.insns.len());
    f.render_widget(
        Paragraph::new(lines)
            .block(block(title, state.focus == Focus::Insns, theme))
            .scroll((top.min(u16::MAX as usize) as u16, 0)),
        r,
    );
}

/// The lines describing one visit: header, registers, stack, and what the instruction changed.
fn visit_lines(
    log: &VerifierLog,
    n: usize,
    v: &InsnVisit,
    highlighted: bool,
    theme: Theme,
) -> Vec<Line<'static>> {
    let mut head = format!("visit {n}  frame {}  path {}", v.frame, v.path);
    if let Some((from, to)) = v.from {
        head.push_str(&format!("  from {from} to {to}"));
    }
    if let VisitKind::Pruned { propagating } = &v.kind {
        head.push_str("  safe (pruned: covered by a state already verified)");
        if !propagating.is_empty() {
            head.push_str(&format!(" propagating {}", propagating.join(",")));
        }
    }
    if log.visits.len() > 1 && v.log_line > 0 {
        head.push_str(&format!("  [log line {}]", v.log_line));
    }
    let head_style = if highlighted {
        theme.current()
    } else {
        theme.name().add_modifier(Modifier::BOLD)
    };
    let mut out = vec![Line::styled(head, head_style)];
    if !v.has_state {
        out.push(Line::styled(
            "  (the log printed no state for this visit)",
            theme.dim(),
        ));
        return out;
    }
    let regs: Vec<String> = v
        .regs
        .iter()
        .map(|(n, r)| format!("r{n}: {}", r.compact()))
        .collect();
    out.push(Line::raw(format!(
        "  regs   {}",
        if regs.is_empty() {
            "(none initialised)".to_string()
        } else {
            regs.join("  ")
        }
    )));
    if !v.stack.is_empty() {
        let slots: Vec<String> = v
            .stack
            .iter()
            .map(|s| format!("fp{}: {}", s.offset, s.compact()))
            .collect();
        out.push(Line::raw(format!("  stack  {}", slots.join("  "))));
    }
    if !v.refs.is_empty() {
        let refs: Vec<String> = v.refs.iter().map(u32::to_string).collect();
        out.push(Line::raw(format!("  refs   {}", refs.join(","))));
    }
    if let Some(c) = v.changed.as_ref().filter(|c| !is_empty(c)) {
        out.push(Line::styled(
            format!("  after  {}", c.compact()),
            theme.changed(),
        ));
    }
    out
}

fn is_empty(c: &FrameState) -> bool {
    c.regs.is_empty() && c.stack.is_empty() && c.refs.is_empty()
}

/// The states panel's lines for `insn`, how many visits they show, and
/// the line where the block of visit `highlighted` starts.
fn states_lines(
    log: &VerifierLog,
    insn: Option<usize>,
    highlighted: Option<usize>,
    theme: Theme,
) -> (Vec<Line<'static>>, usize, Option<usize>) {
    let mut lines: Vec<Line> = Vec::new();
    let mut count = 0;
    let mut at = None;
    let Some(insn) = insn else {
        return (lines, 0, None);
    };
    if let Some(t) = log.insn_text(insn) {
        lines.push(Line::styled(
            format!("{insn}: {}", t.text),
            Style::default().add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(err) = log.error.as_ref().filter(|e| e.insn == Some(insn)) {
        lines.push(Line::styled(
            format!("✗ the verifier failed here: {}", err.headline()),
            theme.breakpoint(),
        ));
    }
    for (i, v) in log
        .visits
        .iter()
        .enumerate()
        .filter(|(_, v)| v.insn == insn)
    {
        count += 1;
        let hl = highlighted == Some(i);
        if hl {
            at = Some(lines.len());
        }
        lines.extend(visit_lines(log, count, v, hl, theme));
    }
    if count == 0 {
        lines.push(Line::styled(
            "the verifier never reached this instruction (dead code on every path)",
            theme.dim(),
        ));
    }
    (lines, count, at)
}

fn draw_states(f: &mut Frame, r: Rect, log: &VerifierLog, state: &ViewState, theme: Theme) {
    let insn = state.selected_insn();
    let (lines, count, _) = states_lines(log, insn, state.highlighted_visit, theme);
    let title = match insn {
        Some(i) => format!(" verifier states at insn {i} ({count} visits) "),
        None => " verifier states ".to_string(),
    };
    let max = lines.len().saturating_sub(1);
    f.render_widget(
        Paragraph::new(lines)
            .block(block(title, state.focus == Focus::States, theme))
            .wrap(Wrap { trim: false })
            .scroll((
                state.states_scroll.min(max).min(u16::MAX as usize) as u16,
                0,
            )),
        r,
    );
}

fn draw_path(f: &mut Frame, r: Rect, log: &VerifierLog, state: &ViewState, theme: Theme) {
    let mut lines: Vec<Line> = Vec::new();
    for (k, &vi) in state.path.iter().enumerate() {
        let v = &log.visits[vi];
        let text = log.insn_text(v.insn).map_or("", |t| t.text.as_str());
        let mut states = v
            .changed
            .as_ref()
            .filter(|c| !is_empty(c))
            .map(FrameState::compact)
            .unwrap_or_default();
        if k + 1 == state.path.len() {
            // The last step: the full state the verifier failed in.
            let st = FrameState {
                frame: v.frame,
                regs: v.regs.clone(),
                stack: v.stack.clone(),
                refs: v.refs.clone(),
                ..FrameState::default()
            };
            states = format!("✗ in {}", st.compact());
        }
        let from = v
            .from
            .map(|(a, b)| format!(" (branch {a} -> {b})"))
            .unwrap_or_default();
        let line = format!("{:>4} insn {:<5} {text}{from}  ; {states}", k + 1, v.insn);
        let style = if k == state.path_selected {
            theme.current()
        } else {
            theme.plain()
        };
        lines.push(Line::styled(line, style));
    }
    let height = r.height.saturating_sub(2) as usize;
    let top = scroll_to(state.path_selected, height, lines.len());
    let title = format!(
        " path to the error ({} steps, Enter jumps) ",
        state.path.len()
    );
    f.render_widget(
        Paragraph::new(lines)
            .block(block(title, state.focus == Focus::Path, theme))
            .scroll((top.min(u16::MAX as usize) as u16, 0)),
        r,
    );
}

fn draw_explain(f: &mut Frame, r: Rect, log: &VerifierLog, theme: Theme) {
    let Some(err) = &log.error else {
        return;
    };
    let e = err.kind.explain();
    let place = match err.insn {
        Some(i) => format!("at insn {i}"),
        None => "whole program".to_string(),
    };
    let lines = vec![
        Line::styled(
            format!("{}  ({place}: {})", e.title, err.headline()),
            theme.breakpoint(),
        ),
        Line::raw(e.explanation.to_string()),
        Line::styled(format!("fix: {}", e.fix), theme.pointer()),
    ];
    f.render_widget(
        Paragraph::new(lines)
            .block(block(" why the verifier rejected it ".into(), false, theme))
            .wrap(Wrap { trim: true }),
        r,
    );
}

const HELP: &[(&str, &str)] = &[
    ("q / Esc", "quit"),
    ("?", "this help (any key closes it)"),
    ("j k / arrows", "move in the focused panel"),
    ("PgUp PgDn", "move a page"),
    ("g G / Home End", "first / last"),
    ("Tab / Enter", "switch focus (instructions, states, path)"),
    ("e", "go to the failing instruction"),
    ("p", "show / hide the path that reached the error"),
    (
        "Enter in the path",
        "jump to that step's instruction and visit",
    ),
    ("mouse wheel", "scroll the panel under the pointer"),
];

fn draw_help(f: &mut Frame, theme: Theme) {
    let area = f.area();
    let w = area.width.min(70);
    let h = area.height.min(HELP.len() as u16 + 4);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| Line::raw(format!("{k:<20} {what}")))
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines)
            .block(block(" keys ".into(), true, theme))
            .wrap(Wrap { trim: false }),
        r,
    );
}

/// Runs the view of `log` on `terminal` until the user quits.
pub fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    log: &VerifierLog,
    state: &mut ViewState,
    theme: Theme,
) -> anyhow::Result<()> {
    while !state.quit {
        terminal.draw(|f| draw(f, log, state, theme))?;
        if event::poll(Duration::from_millis(250))? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => state.key(log, k),
                Event::Mouse(m) => state.mouse(m),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Opens the view of one program's log on the terminal (raw mode,
/// alternate screen, mouse) and runs it until the user quits; the
/// terminal is restored on return, also on errors.
pub fn run_verify_view(log: &VerifierLog, title: &str) -> anyhow::Result<()> {
    enable_raw_mode().map_err(|e| {
        anyhow::anyhow!("cannot put the terminal in raw mode: {e} (is stdout a terminal?)")
    })?;
    let mut out = io::stdout();
    if let Err(e) = execute!(out, EnterAlternateScreen, EnableMouseCapture) {
        let _ = disable_raw_mode();
        anyhow::bail!("cannot set up the terminal: {e}");
    }
    let result = Terminal::new(CrosstermBackend::new(io::stdout()))
        .map_err(anyhow::Error::from)
        .and_then(|mut t| {
            let mut state = ViewState::new(log, title);
            let r = run_loop(&mut t, log, &mut state, Theme::from_env());
            let _ = t.show_cursor();
            r
        });
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen, DisableMouseCapture);
    result
}
