//! The replay UI: ratatui over crossterm. One module per pane, each a
//! component with its own state, `draw` and `event`, over the shared
//! [`debuggee::Debuggee`] (the gitui shape); [`app::App`] lays them out
//! and routes input. Entry points: [`run_replay_ui`].

pub mod app;
pub mod calls;
pub mod command_bridge;
pub mod debuggee;
pub mod disasm;
pub mod explain;
pub mod explain_pane;
pub mod invocations;
pub mod jit_pane;
pub mod maps;
pub mod memory;
pub mod model_run;
pub mod packet_fields;
pub mod pane;
pub mod registers;
pub mod source;
pub mod sources;
pub mod stack;
pub mod theme;
pub mod verifier_pane;
pub mod verify_view;

use std::io;
use std::path::Path;
use std::time::Duration;

use crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event, KeyEventKind};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};

use bpfrr_trace::trace::Trace;

pub use app::App;
pub use debuggee::Debuggee;
pub use theme::Theme;

/// How long a slice of a long movement runs before the UI redraws and reads keys.
const SLICE: Duration = Duration::from_millis(40);

/// Opens the UI over invocation `invocation` of `trace` (read from
/// `trace_path`, used to find source files next to it) and runs it until
/// the user quits.
pub fn run_replay_ui(
    trace: &Trace,
    trace_path: Option<&Path>,
    invocation: u64,
) -> anyhow::Result<()> {
    let d = Debuggee::new(trace, trace_path, invocation)?;
    let mut app = App::new(d, Theme::from_env());
    let mut terminal = TerminalGuard::enter()?;
    run_loop(&mut terminal.terminal, &mut app)
}

/// The event loop: draw, then either run a slice of the current job and
/// poll for keys without waiting, or wait for the next event.
pub fn run_loop<B: Backend>(terminal: &mut Terminal<B>, app: &mut App<'_>) -> anyhow::Result<()> {
    while !app.quit {
        terminal.draw(|f| app.draw(f))?;
        let wait = if app.job.is_some() {
            app.run_job_slice(SLICE);
            Duration::ZERO
        } else {
            Duration::from_millis(250)
        };
        while event::poll(wait)? {
            match event::read()? {
                Event::Key(k) if k.kind != KeyEventKind::Release => app.key(k),
                Event::Mouse(m) => app.mouse(m),
                Event::Resize(..) => {}
                _ => {}
            }
            if !event::poll(Duration::ZERO)? {
                break;
            }
        }
    }
    Ok(())
}

/// The terminal in raw mode on the alternate screen with mouse capture,
/// restored when dropped (also on errors and panics unwinding through it).
struct TerminalGuard {
    terminal: Terminal<CrosstermBackend<io::Stdout>>,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<TerminalGuard> {
        enable_raw_mode().map_err(|e| {
            anyhow::anyhow!("cannot put the terminal in raw mode: {e} (is stdout a terminal?)")
        })?;
        let mut out = io::stdout();
        if let Err(e) = execute!(out, EnterAlternateScreen, EnableMouseCapture) {
            let _ = disable_raw_mode();
            anyhow::bail!("cannot set up the terminal: {e}");
        }
        let terminal = Terminal::new(CrosstermBackend::new(out))?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(
            self.terminal.backend_mut(),
            LeaveAlternateScreen,
            DisableMouseCapture
        );
        let _ = self.terminal.show_cursor();
    }
}
