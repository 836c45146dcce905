//! End to end: the real `bpfrr replay` UI in a tmux session on a committed
//! sample trace, driven with keys (step, reverse step, breakpoint,
//! continue, the `:` command line, help, quit) and checked on the text of
//! `tmux capture-pane`. tmux comes from scripts/setup.sh.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A detached tmux session, killed when dropped (also when a check fails).
struct Tmux {
    name: String,
}

impl Tmux {
    fn start(name: &str, width: u16, height: u16, command: &str) -> Tmux {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", name])
            .output();
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
                command,
            ])
            .env_remove("NO_COLOR")
            .status()
            .expect("tmux runs (scripts/setup.sh installs it)");
        assert!(ok.success(), "tmux new-session failed");
        Tmux {
            name: name.to_string(),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        let ok = Command::new("tmux")
            .args(&args)
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
    }

    /// Types text literally (no key names).
    fn type_text(&self, text: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text`; panics with the screen if it does not.
    /// Waits until the screen shows `text` and has stopped changing: on a
    /// busy machine a capture can catch a frame half written, so the screen
    /// counts only when two captures 100 ms apart are equal.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if s.contains(text) {
                std::thread::sleep(Duration::from_millis(100));
                if self.screen() == s {
                    return s;
                }
            }
            if Instant::now() > deadline {
                panic!("the screen never showed {text:?}; it shows:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .output();
    }
}

fn trace() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../samples/traces/xdp_fw.bpfrr")
        .display()
        .to_string()
}

fn session_command() -> String {
    format!(
        "{} replay {}; echo \"bpfrr exited with $?\"; sleep 30",
        env!("CARGO_BIN_EXE_bpfrr"),
        trace()
    )
}

#[test]
fn step_back_break_continue_help_quit_at_120x40() {
    let t = Tmux::start(
        &format!("bpfrr-ui-e2e-{}", std::process::id()),
        120,
        40,
        &session_command(),
    );
    let s = t.wait_for("inv 0/12  step 0  pc 0");
    for pane in ["Explain", "Source", "Disassembly", "Registers", "Stack"] {
        assert!(s.contains(pane), "{pane} missing:\n{s}");
    }
    assert!(s.contains("int xdp_firewall(struct xdp_md *ctx)"), "{s}");
    assert!(s.contains("0: copy r1 (ctx) into r6"), "{s}");

    // Step, then step back.
    t.keys(&["s"]);
    let s = t.wait_for("step 1  pc 1");
    assert!(s.contains("*r6"), "r6 changed by the step is marked:\n{s}");
    t.keys(&["S"]);
    t.wait_for("step 0  pc 0");

    // A breakpoint at the cursor of the disassembly (found with /), then continue.
    t.keys(&["/"]);
    t.type_text("9: call");
    t.keys(&["Enter"]);
    t.wait_for("found `9: call`");
    t.keys(&["b"]);
    t.wait_for("breakpoint 1 at instruction 9");
    t.keys(&["c"]);
    let s = t.wait_for("breakpoint 1 hit at step 9");
    assert!(s.contains("●▶    9: call 0x69 <parse_packet>"), "{s}");
    assert!(s.contains("call the function parse_packet"), "{s}");

    // The command line runs batch commands.
    t.keys(&[":"]);
    t.type_text("print/x r1");
    t.keys(&["Enter"]);
    t.wait_for("0x");
    t.keys(&[":"]);
    t.type_text("continue");
    t.keys(&["Enter"]);
    t.wait_for("the program returned 2 (XDP_PASS)");

    // Help lists the keys; any key closes it.
    t.keys(&["?"]);
    let s = t.wait_for("Keys (");
    assert!(s.contains("the same, backwards in time"), "{s}");
    t.keys(&["x"]);
    t.wait_for("s step  n next");

    t.keys(&["q"]);
    t.wait_for("bpfrr exited with 0");
}

#[test]
fn usable_at_80x24() {
    let t = Tmux::start(
        &format!("bpfrr-ui-e2e80-{}", std::process::id()),
        80,
        24,
        &session_command(),
    );
    let s = t.wait_for("inv 0/12  step 0");
    for pane in ["Explain", "Disassembly", "Registers", "Packet / context"] {
        assert!(s.contains(pane), "{pane} missing at 80x24:\n{s}");
    }
    t.keys(&["n", "n", "n"]);
    t.wait_for("step 3  pc 3");
    // Tab brings the stack into the auxiliary slot.
    t.keys(&["5"]);
    t.wait_for("frame 0: xdp_firewall");
    t.keys(&["q"]);
    t.wait_for("bpfrr exited with 0");
}
