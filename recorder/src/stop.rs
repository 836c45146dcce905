//! When a recording ends: `--count N`, `--duration D`, `--until-retval V`,
//! Ctrl-C / SIGTERM; and the live status line printed while recording.
//!
//! The pipeline asks a [`Stopper`] after each assembled invocation
//! ([`Stopper::on_invocation`]) and between driver steps
//! ([`Stopper::poll`]). Signals never kill the recorder mid-write: the
//! first Ctrl-C or SIGTERM only sets a flag ([`Interrupt`]), the recorder
//! stops driving, drains what the kernel already produced and writes the
//! trace. A second Ctrl-C exits at once (status 130); the trace is then
//! left as a temporary file that cannot be mistaken for a finished one,
//! and the kernel detaches every link with the process's fds.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

/// Why a stop condition could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StopError(pub String);

/// The user's stop conditions; none set: until Ctrl-C (live) or until the
/// inputs run out (test runs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StopConditions {
    /// Stop after this many invocations.
    pub count: Option<u64>,
    /// Stop after this much time.
    pub duration: Option<Duration>,
    /// Stop right after the first invocation returning this value (compared
    /// as the 64-bit r0; negative numbers as two's complement).
    pub until_retval: Option<u64>,
}

impl StopConditions {
    /// Builds the conditions from the command-line texts.
    pub fn from_args(
        count: Option<&str>,
        duration: Option<&str>,
        until_retval: Option<&str>,
    ) -> Result<StopConditions, StopError> {
        Ok(StopConditions {
            count: count.map(parse_count).transpose()?,
            duration: duration.map(parse_duration).transpose()?,
            until_retval: until_retval.map(parse_retval).transpose()?,
        })
    }
}

/// Parses `--count N` (at least 1).
pub fn parse_count(text: &str) -> Result<u64, StopError> {
    match text.trim().replace('_', "").parse::<u64>() {
        Ok(0) => Err(StopError(
            "--count 0 would record nothing: give at least 1".to_string(),
        )),
        Ok(n) => Ok(n),
        Err(_) => Err(StopError(format!(
            "--count {text:?} is not a whole number of invocations (e.g. --count 100)"
        ))),
    }
}

/// Parses a duration like `10s`, `500ms`, `2m`, `1h30m`, `1.5s`, `250us`;
/// a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, StopError> {
    let bad = || {
        StopError(format!(
            "--duration {text:?} is not a duration (write e.g. 10s, 500ms, 2m or 1h30m)"
        ))
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return seconds(secs).ok_or_else(bad);
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest[..unit_len].trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(seconds(value * scale).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if total.is_zero() {
        return Err(StopError(format!(
            "--duration {text:?} is zero: give a positive duration"
        )));
    }
    Ok(total)
}

fn seconds(secs: f64) -> Option<Duration> {
    (0.0..1e12)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Parses `--until-retval V`: decimal (negative allowed), `0x` hex, or a
/// return-code name (XDP_DROP, TC_ACT_SHOT, ...).
pub fn parse_retval(text: &str) -> Result<u64, StopError> {
    let s = text.trim();
    if let Some(v) = named_retval(s) {
        return Ok(v);
    }
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if let Some(neg) = s.strip_prefix('-') {
        neg.parse::<u64>()
            .ok()
            .filter(|v| *v <= 1 << 63)
            .map(|v| v.wrapping_neg())
    } else {
        s.parse::<u64>().ok()
    };
    parsed.ok_or_else(|| {
        StopError(format!(
            "--until-retval {text:?} is not a return value (write a number such as 1, -1 or 0x2, or a name such as XDP_DROP)"
        ))
    })
}

/// The return codes users think in.
fn named_retval(name: &str) -> Option<u64> {
    let v: i64 = match name.to_ascii_uppercase().as_str() {
        "XDP_ABORTED" => 0,
        "XDP_DROP" => 1,
        "XDP_PASS" => 2,
        "XDP_TX" => 3,
        "XDP_REDIRECT" => 4,
        "TC_ACT_UNSPEC" => -1,
        "TC_ACT_OK" => 0,
        "TC_ACT_RECLASSIFY" => 1,
        "TC_ACT_SHOT" => 2,
        "TC_ACT_PIPE" => 3,
        "TC_ACT_STOLEN" => 4,
        "TC_ACT_REDIRECT" => 7,
        "SK_DROP" => 0,
        "SK_PASS" => 1,
        _ => return None,
    };
    Some(v as u64)
}

/// Why the recording stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// `--count` invocations were recorded.
    Count(u64),
    /// `--duration` elapsed.
    Duration(Duration),
    /// Invocation `seq` returned the `--until-retval` value.
    Retval { value: u64, invocation: u64 },
    /// SIGINT or SIGTERM.
    Signal(i32),
    /// The driver had nothing more to run.
    Finished,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Count(n) => write!(f, "recorded {n} invocations (--count)"),
            StopReason::Duration(d) => write!(f, "{} elapsed (--duration)", format_duration(*d)),
            StopReason::Retval { value, invocation } => write!(
                f,
                "invocation {invocation} returned {} (--until-retval)",
                *value as i64
            ),
            StopReason::Signal(s) => write!(f, "interrupted by {}", signal_name(*s)),
            StopReason::Finished => write!(f, "the driver finished"),
        }
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        SIGINT => "Ctrl-C (SIGINT)".to_string(),
        SIGTERM => "SIGTERM".to_string(),
        n => format!("signal {n}"),
    }
}

/// Catches SIGINT and SIGTERM while it lives: the first one is recorded
/// (and the recorder finishes cleanly); a second SIGINT exits at once with
/// status 130 (143 for SIGTERM). Dropping it unregisters bpfrr's actions.
#[derive(Debug)]
pub struct Interrupt {
    /// 0, or the number of the signal that arrived.
    signal: Arc<AtomicUsize>,
    ids: Vec<SigId>,
}

impl Interrupt {
    /// Installs the handlers.
    pub fn install() -> Result<Interrupt, StopError> {
        let signal = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(AtomicBool::new(false));
        let fail = |e: io::Error| StopError(format!("cannot install the Ctrl-C handler: {e}"));
        let mut ids = Vec::new();
        for sig in [SIGINT, SIGTERM] {
            // Registered first, so it sees `seen` as it was before this very
            // signal: it exits only when an earlier signal already set it.
            ids.push(
                signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&seen))
                    .map_err(fail)?,
            );
            ids.push(signal_hook::flag::register(sig, Arc::clone(&seen)).map_err(fail)?);
            ids.push(
                signal_hook::flag::register_usize(sig, Arc::clone(&signal), sig as usize)
                    .map_err(fail)?,
            );
        }
        Ok(Interrupt { signal, ids })
    }

    /// An interrupt that no signal sets (tests, embedding).
    pub fn manual() -> Interrupt {
        Interrupt {
            signal: Arc::new(AtomicUsize::new(0)),
            ids: Vec::new(),
        }
    }

    /// The signal that arrived, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }

    /// Sets the interrupt as if `signal` had arrived.
    pub fn raise(&self, signal: i32) {
        self.signal.store(signal as usize, Ordering::SeqCst);
    }

    /// A handle other threads can poll.
    pub fn handle(&self) -> InterruptHandle {
        InterruptHandle(Arc::clone(&self.signal))
    }
}

impl Drop for Interrupt {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// A cheap, cloneable view of an [`Interrupt`].
#[derive(Clone, Debug)]
pub struct InterruptHandle(Arc<AtomicUsize>);

impl InterruptHandle {
    pub fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s as i32),
        }
    }
}

/// Checks the stop conditions as the recording goes.
#[derive(Debug)]
pub struct Stopper {
    conditions: StopConditions,
    interrupt: InterruptHandle,
    started: Instant,
    invocations: u64,
    stopped: Option<StopReason>,
}

impl Stopper {
    /// Starts the clock now.
    pub fn new(conditions: StopConditions, interrupt: InterruptHandle) -> Stopper {
        Stopper::starting_at(conditions, interrupt, Instant::now())
    }

    /// Starts the clock at `started` (tests).
    pub fn starting_at(
        conditions: StopConditions,
        interrupt: InterruptHandle,
        started: Instant,
    ) -> Stopper {
        Stopper {
            conditions,
            interrupt,
            started,
            invocations: 0,
            stopped: None,
        }
    }

    /// Counts one assembled invocation (sequence number `seq`, return value
    /// `retval`) and says whether to stop right after it. Once a reason is
    /// found it is kept: later calls return it again.
    pub fn on_invocation(&mut self, seq: u64, retval: u64) -> Option<StopReason> {
        if self.stopped.is_some() {
            return self.stopped;
        }
        self.invocations += 1;
        if self.conditions.until_retval == Some(retval) {
            return self.stop(StopReason::Retval {
                value: retval,
                invocation: seq,
            });
        }
        if let Some(n) = self.conditions.count
            && self.invocations >= n
        {
            return self.stop(StopReason::Count(n));
        }
        None
    }

    /// Checks the clock and the signals.
    pub fn poll(&mut self) -> Option<StopReason> {
        self.poll_at(Instant::now())
    }

    /// [`Stopper::poll`] at a given time (tests).
    pub fn poll_at(&mut self, now: Instant) -> Option<StopReason> {
        if self.stopped.is_some() {
            return self.stopped;
        }
        if let Some(sig) = self.interrupt.signal() {
            return self.stop(StopReason::Signal(sig));
        }
        if let Some(d) = self.conditions.duration
            && now.saturating_duration_since(self.started) >= d
        {
            return self.stop(StopReason::Duration(d));
        }
        None
    }

    /// Records that the driver finished (unless something stopped first).
    pub fn finish(&mut self) -> StopReason {
        *self.stopped.get_or_insert(StopReason::Finished)
    }

    /// The reason the recording stopped, once it has.
    pub fn reason(&self) -> Option<StopReason> {
        self.stopped
    }

    /// How long the next driver step may take: at most `max`, less when the
    /// duration runs out sooner.
    pub fn step_budget(&self, max: Duration) -> Duration {
        match self.conditions.duration {
            Some(d) => max.min(d.saturating_sub(self.started.elapsed())),
            None => max,
        }
    }

    /// Invocations counted so far.
    pub fn invocations(&self) -> u64 {
        self.invocations
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    fn stop(&mut self, reason: StopReason) -> Option<StopReason> {
        self.stopped = Some(reason);
        self.stopped
    }
}

/// What the status line shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub invocations: u64,
    /// Bytes received from the kernel (ring buffer records).
    pub bytes: u64,
    /// Records lost to a full ring buffer.
    pub lost: u64,
    pub elapsed: Duration,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recording: {} invocations, {}, {} lost, {}",
            self.invocations,
            format_bytes(self.bytes),
            self.lost,
            format_duration(self.elapsed)
        )
    }
}

/// A one-line status redrawn in place on a terminal, at most ten times a
/// second; silent when the output is not a terminal.
pub struct StatusLine<W: Write> {
    out: W,
    enabled: bool,
    min_interval: Duration,
    last_draw: Option<Instant>,
    /// Width of the last line drawn (to blank it out).
    drawn: usize,
}

impl StatusLine<io::Stderr> {
    /// The status line on stderr, enabled only when stderr is a terminal.
    pub fn stderr() -> StatusLine<io::Stderr> {
        let enabled = io::stderr().is_terminal();
        StatusLine::new(io::stderr(), enabled)
    }
}

impl<W: Write> StatusLine<W> {
    pub fn new(out: W, enabled: bool) -> StatusLine<W> {
        StatusLine {
            out,
            enabled,
            min_interval: Duration::from_millis(100),
            last_draw: None,
            drawn: 0,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Redraws the line unless it was drawn less than 100 ms ago.
    pub fn update(&mut self, progress: &Progress) {
        self.update_at(Instant::now(), progress);
    }

    /// [`StatusLine::update`] at a given time (tests).
    pub fn update_at(&mut self, now: Instant, progress: &Progress) {
        if !self.enabled {
            return;
        }
        if let Some(last) = self.last_draw
            && now.saturating_duration_since(last) < self.min_interval
        {
            return;
        }
        self.last_draw = Some(now);
        let text = progress.to_string();
        let pad = self.drawn.saturating_sub(text.chars().count());
        // A failed write to the terminal is not worth stopping a recording.
        let _ = write!(self.out, "\r{text}{}", " ".repeat(pad));
        let _ = self.out.flush();
        self.drawn = text.chars().count();
    }

    /// Blanks the line so the final messages start on a clean line.
    pub fn clear(&mut self) {
        if self.enabled && self.drawn > 0 {
            let _ = write!(self.out, "\r{}\r", " ".repeat(self.drawn));
            let _ = self.out.flush();
            self.drawn = 0;
        }
    }

    /// The writer (tests).
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// `1.5 KiB`, `12.0 MiB`; bytes below 1 KiB as `512 B`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// `850ms`, `12.3s`, `4m05s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), ms(500));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        for bad in ["", "s", "10x", "-1s", "ms10", "1..2s", "0s", "1e400"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.starts_with("--duration"), "{bad}: {e}");
        }
    }

    #[test]
    fn counts_and_retvals() {
        assert_eq!(parse_count("100").unwrap(), 100);
        assert_eq!(parse_count("1_000").unwrap(), 1000);
        assert!(parse_count("0").unwrap_err().0.contains("at least 1"));
        assert!(parse_count("-3").is_err());
        assert_eq!(parse_retval("1").unwrap(), 1);
        assert_eq!(parse_retval("-1").unwrap(), u64::MAX);
        assert_eq!(parse_retval("0x10").unwrap(), 16);
        assert_eq!(parse_retval("XDP_DROP").unwrap(), 1);
        assert_eq!(parse_retval("tc_act_shot").unwrap(), 2);
        assert_eq!(parse_retval("TC_ACT_UNSPEC").unwrap(), u64::MAX);
        assert_eq!(
            parse_retval("-9223372036854775808").unwrap(),
            i64::MIN as u64
        );
        let e = parse_retval("drop").unwrap_err().to_string();
        assert!(e.contains("XDP_DROP"), "{e}");
        let c = StopConditions::from_args(Some("5"), Some("2s"), Some("XDP_PASS")).unwrap();
        assert_eq!(
            c,
            StopConditions {
                count: Some(5),
                duration: Some(Duration::from_secs(2)),
                until_retval: Some(2)
            }
        );
        assert!(StopConditions::from_args(None, Some("soon"), None).is_err());
    }

    #[test]
    fn count_stops_after_the_nth_invocation() {
        let i = Interrupt::manual();
        let c = StopConditions {
            count: Some(3),
            ..Default::default()
        };
        let mut s = Stopper::new(c, i.handle());
        assert_eq!(s.on_invocation(1, 0), None);
        assert_eq!(s.on_invocation(2, 0), None);
        assert_eq!(s.on_invocation(3, 0), Some(StopReason::Count(3)));
        // The reason sticks.
        assert_eq!(s.on_invocation(4, 0), Some(StopReason::Count(3)));
        assert_eq!(s.invocations(), 3);
        assert_eq!(s.finish(), StopReason::Count(3));
    }

    #[test]
    fn retval_stops_right_after_the_failing_run() {
        let i = Interrupt::manual();
        let c = StopConditions {
            count: Some(100),
            until_retval: Some(1),
            ..Default::default()
        };
        let mut s = Stopper::new(c, i.handle());
        assert_eq!(s.on_invocation(7, 2), None);
        let r = s.on_invocation(8, 1).unwrap();
        assert_eq!(
            r,
            StopReason::Retval {
                value: 1,
                invocation: 8
            }
        );
        assert_eq!(r.to_string(), "invocation 8 returned 1 (--until-retval)");
    }

    #[test]
    fn duration_and_signals_are_polled() {
        let i = Interrupt::manual();
        let t0 = Instant::now();
        let c = StopConditions {
            duration: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        let mut s = Stopper::starting_at(c, i.handle(), t0);
        assert_eq!(s.poll_at(t0 + Duration::from_millis(499)), None);
        assert_eq!(
            s.poll_at(t0 + Duration::from_millis(500)),
            Some(StopReason::Duration(Duration::from_millis(500)))
        );

        let mut s = Stopper::new(StopConditions::default(), i.handle());
        assert_eq!(s.poll(), None);
        assert!(s.step_budget(Duration::from_millis(50)) == Duration::from_millis(50));
        i.raise(SIGTERM);
        assert_eq!(s.poll(), Some(StopReason::Signal(SIGTERM)));
        assert_eq!(
            StopReason::Signal(SIGINT).to_string(),
            "interrupted by Ctrl-C (SIGINT)"
        );
        assert_eq!(s.finish(), StopReason::Signal(SIGTERM));

        let mut s = Stopper::new(StopConditions::default(), Interrupt::manual().handle());
        assert_eq!(s.finish(), StopReason::Finished);
    }

    #[test]
    fn a_real_sigterm_sets_the_flag_and_does_not_kill() {
        let i = Interrupt::install().unwrap();
        assert_eq!(i.signal(), None);
        signal_hook::low_level::raise(SIGTERM).unwrap();
        // Handlers run before raise returns (same thread).
        assert_eq!(i.signal(), Some(SIGTERM));
        assert_eq!(i.handle().signal(), Some(SIGTERM));
    }

    #[test]
    fn budget_shrinks_near_the_deadline() {
        let c = StopConditions {
            duration: Some(Duration::from_millis(10)),
            ..Default::default()
        };
        let s = Stopper::starting_at(
            c,
            Interrupt::manual().handle(),
            Instant::now() - Duration::from_secs(1),
        );
        assert_eq!(s.step_budget(Duration::from_millis(50)), Duration::ZERO);
    }

    #[test]
    fn status_line_is_rate_limited_and_cleared() {
        let mut line = StatusLine::new(Vec::new(), true);
        let t0 = Instant::now();
        let p = |n| Progress {
            invocations: n,
            bytes: 2048,
            lost: 0,
            elapsed: Duration::from_millis(1500),
        };
        line.update_at(t0, &p(1));
        line.update_at(t0 + Duration::from_millis(50), &p(2)); // too soon
        line.update_at(t0 + Duration::from_millis(100), &p(3));
        line.clear();
        let out = String::from_utf8(line.into_inner()).unwrap();
        assert!(
            out.contains("recording: 1 invocations, 2.0 KiB, 0 lost, 1.5s"),
            "{out:?}"
        );
        assert!(!out.contains("recording: 2 "), "{out:?}");
        assert!(out.contains("recording: 3 "), "{out:?}");
        assert!(out.ends_with('\r'), "{out:?}");

        let mut off = StatusLine::new(Vec::new(), false);
        off.update_at(t0, &p(1));
        off.clear();
        assert!(off.into_inner().is_empty());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(16 << 20), "16.0 MiB");
        assert_eq!(format_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(format_duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(format_duration(Duration::from_secs(245)), "4m05s");
    }
}
