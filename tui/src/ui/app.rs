//! The app: the panes around the shared [`Debuggee`], the layout, focus,
//! the prompt line, the help overlay, and turning keys and mouse events
//! into movements and pane actions. Drawing never runs the program: long
//! movements are [`Job`]s the event loop runs a slice at a time.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::calls::CallsPane;
use super::command_bridge;
use super::debuggee::{Debuggee, Job, Motion};
use super::disasm::DisasmPane;
use super::explain_pane::ExplainPane;
use super::invocations::InvocationsPane;
use super::jit_pane::JitPane;
use super::maps::MapsPane;
use super::memory::MemoryPane;
use super::pane::{Action, Pane, PaneEvent, PaneId, PromptKind};
use super::registers::RegistersPane;
use super::source::SourcePane;
use super::stack::StackPane;
use super::theme::Theme;
use super::verifier_pane::VerifierPane;

/// Global keys, for the help overlay (every key the UI knows is listed
/// there: these plus each pane's own).
pub const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("s", "step one instruction"),
    ("n", "next: step over bpf-to-bpf calls"),
    ("f", "finish: run until the current function returns"),
    ("c", "continue to a breakpoint, a watchpoint or the end"),
    ("S N F C", "the same, backwards in time"),
    ("b", "toggle a breakpoint at the cursor, or here"),
    (
        "w",
        "watch the register/slot at the cursor, or an expression",
    ),
    ("g", "go to a step number"),
    ("/", "search the source or disassembly (Enter: again)"),
    (":", "a batch command: break, print, origin... (:help)"),
    ("↑↓ at :", "command history"),
    ("Tab Shift-Tab", "focus the next / previous pane"),
    ("1-9 0", "focus a pane by number (0: the verifier beliefs)"),
    ("J", "focus the JIT pane (native code of this instruction)"),
    ("Ctrl-C Esc", "stop a running continue; close a prompt"),
    ("mouse", "wheel scrolls, click focuses and moves the cursor"),
    ("?", "this help"),
    ("q", "quit"),
];

/// The prompt being typed.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub kind: PromptKind,
    pub text: String,
}

/// The whole UI state.
pub struct App<'t> {
    pub d: Debuggee<'t>,
    pub theme: Theme,
    panes: Vec<Box<dyn Pane>>,
    pub focus: PaneId,
    /// Which code pane the compact layout shows.
    code_slot: PaneId,
    /// Which auxiliary pane the compact layout shows.
    aux_slot: PaneId,
    pub prompt: Option<Prompt>,
    history: Vec<String>,
    history_at: usize,
    pub help: bool,
    /// First line of the help overlay shown (it scrolls on small terminals).
    help_scroll: u16,
    /// Output of the last command, shown in a popup until dismissed.
    pub output: Option<(String, Vec<String>)>,
    pub message: String,
    pub job: Option<Job>,
    /// Keys typed while a job ran, handled once it is over (typing `n n n` quickly).
    pending: std::collections::VecDeque<KeyEvent>,
    pub quit: bool,
    last_search: String,
    /// Where each pane was drawn last (for mouse events).
    rects: Vec<(PaneId, Rect)>,
}

impl<'t> App<'t> {
    pub fn new(d: Debuggee<'t>, theme: Theme) -> App<'t> {
        let panes: Vec<Box<dyn Pane>> = vec![
            Box::new(SourcePane::new()),
            Box::new(DisasmPane::new()),
            Box::new(RegistersPane::new()),
            Box::new(ExplainPane::new()),
            Box::new(StackPane::new()),
            Box::new(MemoryPane::new()),
            Box::new(MapsPane::new()),
            Box::new(CallsPane::new()),
            Box::new(InvocationsPane::new()),
            Box::new(VerifierPane::new()),
            Box::new(JitPane::new()),
        ];
        let message = match &d.session.line() {
            Some(_) | None => format!(
                "invocation {} of {}: press s to step, c to continue, ? for help",
                d.invocation,
                d.trace.invocation_count()
            ),
        };
        debug_assert!(panes.iter().enumerate().all(|(i, p)| p.id().index() == i));
        let mut app = App {
            d,
            theme,
            panes,
            focus: PaneId::Disasm,
            code_slot: PaneId::Disasm,
            aux_slot: PaneId::Memory,
            prompt: None,
            history: Vec::new(),
            history_at: 0,
            help: false,
            help_scroll: 0,
            output: None,
            message,
            job: None,
            pending: std::collections::VecDeque::new(),
            quit: false,
            last_search: String::new(),
            rects: Vec::new(),
        };
        app.moved();
        app
    }

    /// Tells every pane the position changed.
    fn moved(&mut self) {
        for p in &mut self.panes {
            p.moved(&self.d);
        }
    }

    /// Focuses a pane (and shows it in the compact layout).
    pub fn set_focus(&mut self, id: PaneId) {
        self.focus = id;
        match id {
            PaneId::Source | PaneId::Disasm => self.code_slot = id,
            PaneId::Registers | PaneId::Explain => {}
            _ => self.aux_slot = id,
        }
    }

    // ---- movements --------------------------------------------------------

    /// Starts a movement; long ones become a job.
    pub fn motion(&mut self, m: Motion) {
        if self.d.session.at_end()
            && matches!(
                m,
                Motion::Step | Motion::Next | Motion::Finish | Motion::Continue
            )
        {
            self.message = format!(
                "the invocation has ended ({}); step back with S or go to a step with g",
                self.d.end_text().unwrap_or_default()
            );
            return;
        }
        match self.d.begin(m) {
            Some(job) => {
                self.job = Some(job);
                self.message = format!("{}…", m.name());
            }
            None => self.after_motion(),
        }
    }

    fn after_motion(&mut self) {
        if let Some(stop) = &self.d.last_stop {
            self.message = self.d.describe_stop(stop);
        }
        self.moved();
    }

    /// Runs one slice of the current job. True when a job is (still) running.
    pub fn run_job_slice(&mut self, slice: Duration) -> bool {
        let Some(mut job) = self.job.take() else {
            return false;
        };
        match self.d.run_slice(&mut job, slice) {
            Some(_) => {
                self.after_motion();
                // Keys typed meanwhile, until one starts another job.
                while self.job.is_none()
                    && let Some(k) = self.pending.pop_front()
                {
                    self.key(k);
                }
                self.job.is_some()
            }
            None => {
                let pos = self.d.session.position();
                let done = pos.abs_diff(job.start_position);
                let secs = job.started.elapsed().as_secs_f64().max(1e-6);
                self.message = format!(
                    "{}: step {pos} ({done} steps, {:.1}M steps/s) — Ctrl-C to stop",
                    job.motion.name(),
                    done as f64 / secs / 1e6
                );
                self.job = Some(job);
                true
            }
        }
    }

    /// Runs the current job to its end (what the render tests use).
    #[allow(dead_code)]
    pub fn finish_job(&mut self) {
        while self.run_job_slice(Duration::from_millis(50)) {}
    }

    // ---- actions -------------------------------------------------------------

    fn act(&mut self, a: Action) {
        match a {
            Action::None | Action::Unhandled => {}
            Action::Goto(n) => {
                self.d.goto(n);
                self.after_motion();
            }
            Action::RunTo(pc) => {
                let prog = self.d.view.prog;
                let stop = self.d.session.goto_visit(pc, Some(prog), true);
                let found = stop.position != self.d.view.position || self.d.view.pc == pc;
                self.d.finish_motion(stop);
                self.after_motion();
                if !found || self.d.view.pc != pc {
                    self.message =
                        format!("instruction {pc} does not run again in this invocation");
                }
            }
            Action::ToggleBreakpoint(pc) => {
                self.message = self.d.toggle_breakpoint(pc);
            }
            Action::Watch(expr) => {
                self.message = match self.d.session.add_watchpoint(&expr) {
                    Ok(id) => format!("watchpoint {id} on {expr}"),
                    Err(e) => e.to_string(),
                };
            }
            Action::SwitchInvocation(i) => match self.d.switch_invocation(i) {
                Ok(()) => {
                    self.message = format!("invocation {i}: step 0");
                    self.moved();
                }
                Err(e) => self.message = e.to_string(),
            },
            Action::Prompt(kind, text) => self.open_prompt(kind, &text),
            Action::Message(m) => self.message = m,
        }
    }

    fn open_prompt(&mut self, kind: PromptKind, text: &str) {
        self.prompt = Some(Prompt {
            kind,
            text: text.to_string(),
        });
        self.history_at = self.history.len();
    }

    fn submit_prompt(&mut self, p: Prompt) {
        let text = p.text.trim().to_string();
        match p.kind {
            PromptKind::Command => {
                if text.is_empty() {
                    return;
                }
                self.history.push(text.clone());
                self.command(&text);
            }
            PromptKind::Goto => match parse_number(&text) {
                Some(n) => self.act(Action::Goto(n)),
                None => self.message = format!("`{text}` is not a step number"),
            },
            PromptKind::Watch => {
                if !text.is_empty() {
                    self.act(Action::Watch(text));
                }
            }
            PromptKind::Search => {
                let needle = if text.is_empty() {
                    self.last_search.clone()
                } else {
                    text
                };
                if needle.is_empty() {
                    return;
                }
                self.last_search = needle.clone();
                let target = match self.focus {
                    PaneId::Source => PaneId::Source,
                    _ => self.code_slot,
                };
                let found = {
                    let d = &self.d;
                    self.panes[target.index()].search(&needle, d)
                };
                self.message = if found {
                    format!("found `{needle}`")
                } else {
                    format!("`{needle}` is not in the {}", target.title().to_lowercase())
                };
            }
            PromptKind::Filter => {
                let rv = if text.is_empty() {
                    None
                } else {
                    parse_number(&text)
                };
                if rv.is_none() && !text.is_empty() {
                    self.message = format!("`{text}` is not a number");
                    return;
                }
                let d = &self.d;
                if let Some(msg) = self.panes[PaneId::Invocations.index()].filter(rv, d) {
                    self.message = msg;
                }
            }
        }
    }

    /// Runs a line of the command language at the `:` prompt.
    pub fn command(&mut self, line: &str) {
        let (text, ok) = match command_bridge::run(&mut self.d, line) {
            command_bridge::Outcome::Motion(m) => {
                self.motion(m);
                return;
            }
            command_bridge::Outcome::Ran { text, ok } => (text, ok),
        };
        self.d.refresh();
        self.moved();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() <= 1 {
            self.message = lines.pop().unwrap_or_default();
            if self.message.is_empty() {
                self.message = format!("{line}: done");
            }
        } else {
            self.message = if ok {
                format!("{line}: {} lines", lines.len())
            } else {
                format!("{line}: failed")
            };
            self.output = Some((line.to_string(), lines));
        }
    }

    // ---- input -------------------------------------------------------------------

    pub fn key(&mut self, k: KeyEvent) {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if self.job.is_some() {
            if (ctrl && k.code == KeyCode::Char('c')) || k.code == KeyCode::Esc {
                if let Some(j) = self.job.as_mut() {
                    j.cancelled = true;
                }
                self.pending.clear();
                self.run_job_slice(Duration::ZERO);
            } else {
                self.pending.push_back(k);
            }
            return;
        }
        if self.help {
            match k.code {
                KeyCode::Down | KeyCode::Char('j') => self.help_scroll += 1,
                KeyCode::Up | KeyCode::Char('k') => {
                    self.help_scroll = self.help_scroll.saturating_sub(1)
                }
                KeyCode::PageDown => self.help_scroll += 10,
                KeyCode::PageUp => self.help_scroll = self.help_scroll.saturating_sub(10),
                _ => self.help = false,
            }
            return;
        }
        if let Some(mut p) = self.prompt.take() {
            match k.code {
                KeyCode::Esc => {}
                KeyCode::Char('c') if ctrl => {}
                KeyCode::Enter => self.submit_prompt(p),
                KeyCode::Backspace => {
                    if p.text.pop().is_some() || p.kind != PromptKind::Command {
                        self.prompt = Some(p);
                    }
                }
                KeyCode::Up if p.kind == PromptKind::Command => {
                    self.history_at = self.history_at.saturating_sub(1);
                    if let Some(h) = self.history.get(self.history_at) {
                        p.text = h.clone();
                    }
                    self.prompt = Some(p);
                }
                KeyCode::Down if p.kind == PromptKind::Command => {
                    self.history_at = (self.history_at + 1).min(self.history.len());
                    p.text = self
                        .history
                        .get(self.history_at)
                        .cloned()
                        .unwrap_or_default();
                    self.prompt = Some(p);
                }
                KeyCode::Char(c) if !ctrl => {
                    p.text.push(c);
                    self.prompt = Some(p);
                }
                _ => self.prompt = Some(p),
            }
            return;
        }
        if self.output.is_some() {
            self.output = None;
            if matches!(k.code, KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q')) {
                return;
            }
        }
        if ctrl {
            if k.code == KeyCode::Char('c') {
                self.message = "nothing is running; q quits".into();
            }
            return;
        }
        // The focused pane first (its cursor keys, b and w at its cursor).
        let a = {
            let d = &self.d;
            self.panes[self.focus.index()].event(PaneEvent::Key(k), d)
        };
        if a != Action::Unhandled {
            self.act(a);
            return;
        }
        match k.code {
            KeyCode::Char('s') => self.motion(Motion::Step),
            KeyCode::Char('n') => self.motion(Motion::Next),
            KeyCode::Char('f') => self.motion(Motion::Finish),
            KeyCode::Char('c') => self.motion(Motion::Continue),
            KeyCode::Char('S') => self.motion(Motion::ReverseStep),
            KeyCode::Char('N') => self.motion(Motion::ReverseNext),
            KeyCode::Char('F') => self.motion(Motion::ReverseFinish),
            KeyCode::Char('C') => self.motion(Motion::ReverseContinue),
            KeyCode::Char('b') => {
                let pc = self.d.view.pc;
                self.act(Action::ToggleBreakpoint(pc));
            }
            KeyCode::Char('w') => self.open_prompt(PromptKind::Watch, ""),
            KeyCode::Char('g') => self.open_prompt(PromptKind::Goto, ""),
            KeyCode::Char('/') => self.open_prompt(PromptKind::Search, ""),
            KeyCode::Char(':') => self.open_prompt(PromptKind::Command, ""),
            KeyCode::Char('?') => {
                self.help = true;
                self.help_scroll = 0;
            }
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Tab => {
                let i = (self.focus.index() + 1) % PaneId::ALL.len();
                self.set_focus(PaneId::ALL[i]);
            }
            KeyCode::BackTab => {
                let n = PaneId::ALL.len();
                let i = (self.focus.index() + n - 1) % n;
                self.set_focus(PaneId::ALL[i]);
            }
            KeyCode::Char(c @ ('0'..='9' | 'J')) => {
                if let Some(id) = PaneId::ALL.iter().find(|p| p.key() == c) {
                    self.set_focus(*id);
                }
            }
            _ => {}
        }
    }

    pub fn mouse(&mut self, m: MouseEvent) {
        if self.job.is_some() || self.help {
            return;
        }
        let Some((id, r)) = self
            .rects
            .iter()
            .find(|(_, r)| r.contains((m.column, m.row).into()))
            .copied()
        else {
            return;
        };
        let ev = match m.kind {
            MouseEventKind::ScrollUp => PaneEvent::Scroll(-3),
            MouseEventKind::ScrollDown => PaneEvent::Scroll(3),
            MouseEventKind::Down(MouseButton::Left) => {
                self.set_focus(id);
                if m.row <= r.y || m.row + 1 >= r.y + r.height {
                    return;
                }
                PaneEvent::Click {
                    row: m.row - r.y - 1,
                }
            }
            _ => return,
        };
        let a = {
            let d = &self.d;
            self.panes[id.index()].event(ev, d)
        };
        self.act(a);
    }

    // ---- drawing ------------------------------------------------------------------

    /// Where each pane goes for a terminal of `area`.
    pub fn layout(&self, area: Rect) -> (Vec<(PaneId, Rect)>, Rect, Rect) {
        let rows = Layout::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Min(3),
                Constraint::Length(1),
                Constraint::Length(1),
            ])
            .split(area);
        let (body, status, cmd) = (rows[0], rows[1], rows[2]);
        let mut out = Vec::new();
        if area.width >= 120 && area.height >= 32 {
            let v = Layout::default()
                .direction(Direction::Vertical)
                .constraints([Constraint::Length(5), Constraint::Min(5)])
                .split(body);
            out.push((PaneId::Explain, v[0]));
            let cols = Layout::default()
                .direction(Direction::Horizontal)
                .constraints([
                    Constraint::Percentage(42),
                    Constraint::Percentage(26),
                    Constraint::Percentage(32),
                ])
                .split(v[1]);
            let left = Layout::default()
                .direction(Direction::Vertical)
                .constraints([
                    Constraint::Percentage(40),
                    Constraint::Percentage(40),
                    Constraint::Percentage(20),
                ])
                .split(cols[0]);
            out.push((PaneId::Source, left[0]));
            out.push((PaneId::Disasm, left[1]));
            out.push((PaneId::Jit, left[2]));
            let mid = Layout::default()
                .direction(Direction::Vertical)
                .constraints([
                    Constraint::Length(13),
                    Constraint::Fill(1),
                    Constraint::Fill(1),
                ])
                .split(cols[1]);
            out.push((PaneId::Registers, mid[0]));
            out.push((PaneId::Verifier, mid[1]));
            out.push((PaneId::Stack, mid[2]));
            let right = Layout::default()
                .direction(Direction::Vertical)
                .constraints([
                    Constraint::Percentage(34),
                    Constraint::Percentage(22),
                    Constraint::Percentage(22),
                    Constraint::Percentage(22),
                ])
                .split(cols[2]);
            out.push((PaneId::Memory, right[0]));
            out.push((PaneId::Maps, right[1]));
            out.push((PaneId::Calls, right[2]));
            out.push((PaneId::Invocations, right[3]));
        } else {
            // Compact: explain on top; one code pane on the left; registers
            // and one auxiliary pane on the right. Tab brings the others in.
            let explain_h = if body.height >= 20 { 4 } else { 3 };
            let v = Layout::default()
                .direction(Direction::Vertical)
                .constraints([Constraint::Length(explain_h), Constraint::Min(3)])
                .split(body);
            out.push((PaneId::Explain, v[0]));
            let right_w = (area.width / 2).clamp(30, 60);
            let cols = Layout::default()
                .direction(Direction::Horizontal)
                .constraints([Constraint::Min(20), Constraint::Length(right_w)])
                .split(v[1]);
            out.push((self.code_slot, cols[0]));
            let regs_h = 13.min(cols[1].height.saturating_sub(3).max(3));
            let right = Layout::default()
                .direction(Direction::Vertical)
                .constraints([Constraint::Length(regs_h), Constraint::Min(3)])
                .split(cols[1]);
            out.push((PaneId::Registers, right[0]));
            out.push((self.aux_slot, right[1]));
        }
        (out, status, cmd)
    }

    pub fn draw(&mut self, f: &mut Frame) {
        let (rects, status, cmd) = self.layout(f.area());
        for (id, r) in &rects {
            let focused = *id == self.focus;
            let d = &self.d;
            self.panes[id.index()].draw(f, *r, d, &self.theme, focused);
        }
        self.rects = rects;
        self.draw_status(f, status);
        self.draw_cmdline(f, cmd);
        if let Some((title, lines)) = &self.output {
            draw_output(f, title, lines, &self.theme);
        }
        if self.help {
            self.draw_help(f);
        }
    }

    fn draw_status(&self, f: &mut Frame, area: Rect) {
        let d = &self.d;
        let end = match d.session.end() {
            Some(e) => format!("/{}", e.position),
            None => String::new(),
        };
        let line = d
            .session
            .line()
            .map(|l| format!("  {}:{}", l.file.rsplit('/').next().unwrap_or(""), l.line))
            .unwrap_or_default();
        let left = format!(
            " {}  inv {}/{}  step {}{end}  pc {}{line} ",
            d.trace_name,
            d.invocation,
            d.trace.invocation_count(),
            d.view.position,
            d.view.pc
        );
        let room = (area.width as usize).saturating_sub(left.chars().count() + 1);
        let msg: String = self.message.chars().take(room).collect();
        let pad = room.saturating_sub(msg.chars().count());
        let style = self.theme.status();
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(left, style.add_modifier(ratatui::style::Modifier::BOLD)),
                Span::styled(format!(" {msg}{}", " ".repeat(pad)), style),
            ])),
            area,
        );
    }

    fn draw_cmdline(&self, f: &mut Frame, area: Rect) {
        let t = &self.theme;
        let line = match &self.prompt {
            Some(p) => {
                f.set_cursor_position((
                    area.x + (p.kind.prefix().chars().count() + p.text.chars().count()) as u16,
                    area.y,
                ));
                Line::from(vec![
                    Span::styled(p.kind.prefix(), t.name()),
                    Span::raw(p.text.clone()),
                ])
            }
            None if self.job.is_some() => {
                Line::from(Span::styled("running… Ctrl-C or Esc stops", t.dim()))
            }
            None => Line::from(Span::styled(
                "s step  n next  f finish  c cont  S/N/F/C back  b break  w watch  g goto  : cmd  ? help  q quit",
                t.dim(),
            )),
        };
        f.render_widget(Paragraph::new(line), area);
    }

    fn draw_help(&self, f: &mut Frame) {
        let t = &self.theme;
        let area = f.area();
        let mut lines = vec![Line::from(Span::styled(
            "Keys (↑↓ scroll, any other key closes)",
            t.title(false),
        ))];
        let key_line = |k: &str, what: &str| {
            Line::from(vec![
                Span::styled(format!("{k:>16} "), t.name()),
                Span::raw(what.to_string()),
            ])
        };
        for (k, what) in GLOBAL_KEYS {
            lines.push(key_line(k, what));
        }
        let id = self.focus;
        let pane_keys = self.panes[id.index()].keys();
        if !pane_keys.is_empty() {
            lines.push(Line::from(Span::styled(
                format!("In the {} pane (focused)", id.title()),
                t.title(false),
            )));
            for (k, what) in pane_keys {
                lines.push(key_line(k, what));
            }
        }
        lines.push(Line::from(Span::styled(
            "Panes (Tab order, or their key)",
            t.title(false),
        )));
        let names: Vec<String> = PaneId::ALL
            .iter()
            .map(|p| format!("{} {}", p.key(), p.title()))
            .collect();
        let w = area.width.saturating_sub(2).min(100);
        // Names on as many lines as the box needs (the height counts lines).
        let mut row = String::new();
        for n in names {
            if !row.is_empty()
                && row.chars().count() + 3 + n.chars().count() > (w as usize).saturating_sub(2)
            {
                lines.push(Line::from(std::mem::take(&mut row)));
            }
            if !row.is_empty() {
                row.push_str(" · ");
            }
            row.push_str(&n);
        }
        lines.push(Line::from(row));
        let h = (lines.len() as u16 + 2).min(area.height);
        let max_scroll = (lines.len() as u16 + 2).saturating_sub(h);
        let scroll = self.help_scroll.min(max_scroll);
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .scroll((scroll, 0))
                .block(Block::default().borders(Borders::ALL).title(" Help ")),
            r,
        );
    }
}

fn draw_output(f: &mut Frame, title: &str, lines: &[String], t: &Theme) {
    let area = f.area();
    let h = (lines.len() as u16 + 2).min(area.height / 2).max(3);
    let r = Rect {
        x: area.x,
        y: area.y + area.height.saturating_sub(h + 2),
        width: area.width,
        height: h,
    };
    let shown: Vec<Line> = lines
        .iter()
        .rev()
        .take(h as usize - 2)
        .rev()
        .map(|l| Line::from(l.as_str()))
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(shown).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border(true))
                .title(format!(" :{title}  (any key closes) ")),
        ),
        r,
    );
}

fn parse_number(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}
