//! What every pane is: a component with its own state (cursor, scroll)
//! that draws itself from the shared [`Debuggee`] and turns the events
//! sent to it into [`Action`]s the app carries out.

use crossterm::event::KeyEvent;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use super::debuggee::Debuggee;
use super::theme::Theme;

/// The panes, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaneId {
    Source,
    Disasm,
    Registers,
    Explain,
    Stack,
    Memory,
    Maps,
    Calls,
    Invocations,
    Verifier,
    Jit,
}

impl PaneId {
    pub const ALL: [PaneId; 11] = [
        PaneId::Source,
        PaneId::Disasm,
        PaneId::Registers,
        PaneId::Explain,
        PaneId::Stack,
        PaneId::Memory,
        PaneId::Maps,
        PaneId::Calls,
        PaneId::Invocations,
        PaneId::Verifier,
        PaneId::Jit,
    ];

    pub fn index(self) -> usize {
        PaneId::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    /// The key that focuses the pane: 1-9, then 0, then J.
    pub fn key(self) -> char {
        match self.index() {
            i @ 0..=8 => (b'1' + i as u8) as char,
            9 => '0',
            _ => 'J',
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Source => "Source",
            PaneId::Disasm => "Disassembly",
            PaneId::Registers => "Registers",
            PaneId::Explain => "Explain",
            PaneId::Stack => "Stack",
            PaneId::Memory => "Packet / context",
            PaneId::Maps => "Maps",
            PaneId::Calls => "Helper calls / printk",
            PaneId::Invocations => "Invocations",
            PaneId::Verifier => "Verifier",
            PaneId::Jit => "JIT",
        }
    }
}

/// An input event for one pane.
#[derive(Clone, Copy, Debug)]
pub enum PaneEvent {
    Key(KeyEvent),
    /// Mouse wheel: lines (negative = up).
    Scroll(i32),
    /// A click at this row inside the pane's border.
    Click {
        row: u16,
    },
}

/// What a prompt at the bottom line asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromptKind {
    /// `:` a command of the batch command language.
    Command,
    /// `g` a step number.
    Goto,
    /// `w` an expression to watch.
    Watch,
    /// `/` text to find in the focused pane.
    Search,
    /// `f` in the invocations pane: a return value.
    Filter,
}

impl PromptKind {
    pub fn prefix(self) -> &'static str {
        match self {
            PromptKind::Command => ":",
            PromptKind::Goto => "goto step: ",
            PromptKind::Watch => "watch: ",
            PromptKind::Search => "/",
            PromptKind::Filter => "return value (empty for all): ",
        }
    }
}

/// What a pane asks the app to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    None,
    /// The event was not for this pane.
    Unhandled,
    Goto(u64),
    /// Go to the next visit of this instruction of the current program.
    RunTo(usize),
    /// Toggle a breakpoint at this instruction of the current program.
    ToggleBreakpoint(usize),
    Watch(String),
    SwitchInvocation(u64),
    /// Open a prompt with this text.
    Prompt(PromptKind, String),
    Message(String),
}

/// A pane.
pub trait Pane {
    fn id(&self) -> PaneId;
    fn draw(&mut self, f: &mut Frame, area: Rect, d: &Debuggee<'_>, theme: &Theme, focused: bool);
    fn event(&mut self, ev: PaneEvent, d: &Debuggee<'_>) -> Action;
    /// The position changed: follow it (cursor on the current line etc.).
    fn moved(&mut self, _d: &Debuggee<'_>) {}
    /// Search for `text` from the cursor; true when found.
    fn search(&mut self, _text: &str, _d: &Debuggee<'_>) -> bool {
        false
    }
    /// Show only rows whose return value is `rv` (None: all); the message to show.
    fn filter(&mut self, _rv: Option<u64>, _d: &Debuggee<'_>) -> Option<String> {
        None
    }
    /// Keys of this pane for the help overlay.
    fn keys(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
}

/// The bordered block of a pane.
pub fn block<'a>(id: PaneId, extra: &str, theme: &Theme, focused: bool) -> Block<'a> {
    let mut title = vec![Span::styled(
        format!(" {} ", id.title()),
        theme.title(focused),
    )];
    if !extra.is_empty() {
        title.push(Span::styled(format!(" {extra} "), theme.dim()));
    }
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border(focused))
        .title(Line::from(title))
}

/// A cursor and a scroll offset over a list of rows.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListState {
    pub cursor: usize,
    pub scroll: usize,
}

impl ListState {
    /// Keeps the cursor on screen with a little context around it.
    pub fn fit(&mut self, rows: usize, height: usize) {
        if rows == 0 || height == 0 {
            self.cursor = 0;
            self.scroll = 0;
            return;
        }
        self.cursor = self.cursor.min(rows - 1);
        let margin = if height > 8 { 2 } else { 0 };
        if self.cursor < self.scroll + margin {
            self.scroll = self.cursor.saturating_sub(margin);
        }
        if self.cursor + margin >= self.scroll + height {
            self.scroll = (self.cursor + margin + 1).saturating_sub(height);
        }
        self.scroll = self.scroll.min(rows.saturating_sub(height));
    }

    /// Centers the cursor (when jumping to a far place).
    pub fn center(&mut self, rows: usize, height: usize) {
        self.scroll = self.cursor.saturating_sub(height / 2);
        self.fit(rows, height);
    }

    /// Moves the cursor by `delta` rows (keys, wheel).
    pub fn move_by(&mut self, delta: i64, rows: usize) {
        let c = self.cursor as i64 + delta;
        self.cursor = c.clamp(0, rows.saturating_sub(1) as i64) as usize;
    }

    /// The usual list keys: arrows, j/k, PageUp/PageDown, Home/End. True when handled.
    pub fn key(&mut self, key: &KeyEvent, rows: usize, page: usize) -> bool {
        use crossterm::event::KeyCode::*;
        match key.code {
            Up | Char('k') => self.move_by(-1, rows),
            Down | Char('j') => self.move_by(1, rows),
            PageUp => self.move_by(-(page.max(1) as i64), rows),
            PageDown => self.move_by(page.max(1) as i64, rows),
            Home => self.cursor = 0,
            End => self.cursor = rows.saturating_sub(1),
            _ => return false,
        }
        true
    }
}

/// Cuts `s` to `w` display columns.
pub fn clip(s: &str, w: usize) -> String {
    s.chars().take(w).collect()
}
