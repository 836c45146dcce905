//! The `:` command line: a line of the batch command language (the same
//! parser and executor as `bpfrr replay -x`, in `crate::commands`), run
//! against the UI's session. Movements that may run long (continue,
//! finish, next, their reverse twins) become UI jobs instead, so they run
//! in slices, show progress and stop on Ctrl-C.

use bpfrr_trace::catalog::ProgType;

use super::debuggee::{Debuggee, Motion};
use crate::commands::{self, Command, text};

/// What a command line asks for.
pub enum Outcome {
    /// The command ran; its text output, and whether it failed.
    Ran { text: String, ok: bool },
    /// A movement for the UI's job runner.
    Motion(Motion),
}

/// Runs `line` on the debuggee's session.
pub fn run(d: &mut Debuggee<'_>, line: &str) -> Outcome {
    let cmd = match commands::parse(line) {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Ran {
                text: e.0,
                ok: false,
            };
        }
    };
    let motion = match cmd {
        Command::Continue => Some(Motion::Continue),
        Command::ReverseContinue => Some(Motion::ReverseContinue),
        Command::Finish => Some(Motion::Finish),
        Command::ReverseFinish => Some(Motion::ReverseFinish),
        Command::Next(1) => Some(Motion::Next),
        Command::ReverseNext(1) => Some(Motion::ReverseNext),
        _ => None,
    };
    if let Some(m) = motion {
        return Outcome::Motion(m);
    }
    if let Command::Invocation(n) = cmd {
        return match d.switch_invocation(n) {
            Ok(()) => Outcome::Ran {
                text: format!("invocation {n}: step 0"),
                ok: true,
            },
            Err(e) => Outcome::Ran {
                text: e.to_string(),
                ok: false,
            },
        };
    }
    let prog_type = d
        .trace
        .programs()
        .get(d.view.prog)
        .and_then(|p| ProgType::from_number(p.prog_type));
    let out = commands::execute_session(&mut d.session, &cmd, prog_type);
    Outcome::Ran {
        text: text::render(&out),
        ok: !out.is_error(),
    }
}
