//! Live XDP recording under load: `sudo -E cargo bench -p bpfrr-recorder
//! --bench live_xdp`.
//!
//! The bench creates a network namespace with a veth pair `va` <-> `vb`,
//! attaches samples/xdp_fw.bpf.o's `xdp_firewall` in generic mode on `vb`
//! and sends 64-byte UDP frames (to :53: the firewall's pass path) out of
//! `va` from an AF_PACKET socket on a thread inside the namespace, paced
//! to a series of target rates and flat out. No frame leaves the namespace.
//!
//! For each rate it measures:
//! - the reference: the ORIGINAL program attached the same way, with no
//!   recorder (how many times it ran, the kernel's ns per run);
//! - a recording through the same code `bpfrr record --xdp vb:generic`
//!   runs (`record::record` with the live driver, writing a trace), per
//!   ring buffer size: invocations recorded per second, records lost (the
//!   recorder's per-CPU counters), runs not recorded, the instrumented
//!   program's kernel ns per run, the reader thread's CPU (the thread that
//!   drains, decodes, assembles and writes) and how long it took after the
//!   load stopped to catch up.
//!
//! CPU figures are each thread's CPU time and its time runnable but
//! waiting for a CPU (/proc/thread-self/schedstat), as shares of the run:
//! on a shared machine the second says how much the other load held the
//! thread back.
//!
//! Then it narrows down where loss starts between the highest lossless
//! rate and the lowest lossy one (a few more runs), and prints ready-to-paste
//! markdown tables on stdout (progress goes to stderr). Run counts and
//! kernel times come from the kernel's program statistics (BPF_ENABLE_STATS,
//! held while the bench runs; it adds a few tens of ns per run to every BPF
//! program on the machine, both columns alike).
//!
//! Settings (environment): `BPFRR_LIVE_RATES` (default
//! `10k,50k,100k,200k,500k,max`), `BPFRR_LIVE_SECS` (seconds per run,
//! default 3), `BPFRR_LIVE_CONFIGS` (recordings, `BUFFER[/SNAPLEN]`,
//! default `16M,256M,16M/128`), `BPFRR_LIVE_REFINE` (bisection runs per
//! configuration, default 3). Needs root; otherwise it says it is skipped.
//! Only the public recording API is used (`record::record`, `Driver`,
//! `attach::LiveDriver`), so the bench measures whatever transport the
//! recorder has.

fn main() {
    #[cfg(target_os = "linux")]
    live::main();
    #[cfg(not(target_os = "linux"))]
    println!("live_xdp: skipped (the recorder runs on Linux only)");
}

#[cfg(target_os = "linux")]
#[path = "../tests/netns/mod.rs"]
mod netns;

#[cfg(target_os = "linux")]
mod live {
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
    use std::path::PathBuf;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use bpfrr_recorder::attach::{AttachSpec, LiveDriver, XdpMode, XdpTarget};
    use bpfrr_recorder::record::{
        CaptureHints, Driver, DriverError, DriverTarget, PrepareOptions, RecordOptions, Step,
        record,
    };
    use bpfrr_recorder::stop::{Interrupt, StopConditions};
    use cpu_time::ThreadTime;

    use crate::netns::samples::{attach_program, load, open_sample};
    use crate::netns::{NetNs, udp_frame};

    /// The sending and the receiving end of the veth pair.
    const TX: &str = "va";
    const RX: &str = "vb";
    /// Frames handed to the kernel per sendmmsg call at most.
    const BATCH: usize = 64;

    // ---------------------------------------------------------------
    // Settings

    /// One recording configuration: `--buffer` and `--snaplen`.
    #[derive(Clone, Copy, Debug)]
    struct Config {
        buffer: u32,
        snaplen: Option<u32>,
    }

    impl Config {
        fn label(&self) -> String {
            match self.snaplen {
                None => format_size(self.buffer),
                Some(s) => format!("{}, `--snaplen {s}`", format_size(self.buffer)),
            }
        }
    }

    struct Settings {
        /// Target packets per second; None: as fast as the sender can.
        rates: Vec<Option<u64>>,
        duration: Duration,
        configs: Vec<Config>,
        refine: u32,
    }

    fn env_or(name: &str, default: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| default.to_string())
    }

    /// `10k`, `2M`, `500`: a count with an optional k/M suffix.
    fn parse_count(text: &str, factor_k: u64) -> Option<u64> {
        let t = text.trim();
        let (num, mult) = match t.chars().last()? {
            'k' | 'K' => (&t[..t.len() - 1], factor_k),
            'm' | 'M' => (&t[..t.len() - 1], factor_k * factor_k),
            _ => (t, 1),
        };
        num.parse::<u64>().ok().map(|n| n * mult)
    }

    fn settings() -> Result<Settings, String> {
        let rates_text = env_or("BPFRR_LIVE_RATES", "10k,50k,100k,200k,500k,max");
        let rates = rates_text
            .split(',')
            .map(|r| match r.trim() {
                "max" => Ok(None),
                r => parse_count(r, 1000)
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| {
                        format!("BPFRR_LIVE_RATES: {r:?} is not a rate (e.g. 50k, max)")
                    }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let secs_text = env_or("BPFRR_LIVE_SECS", "3");
        let secs: f64 = secs_text
            .parse()
            .ok()
            .filter(|s: &f64| *s > 0.0 && *s < 3600.0)
            .ok_or_else(|| format!("BPFRR_LIVE_SECS: {secs_text:?} is not a number of seconds"))?;
        let configs_text = env_or("BPFRR_LIVE_CONFIGS", "16M,256M,16M/128");
        let configs = configs_text
            .split(',')
            .map(|c| {
                let (buffer, snaplen) = match c.trim().split_once('/') {
                    Some((b, s)) => (b, Some(s)),
                    None => (c.trim(), None),
                };
                let bad =
                    || format!("BPFRR_LIVE_CONFIGS: {c:?} is not BUFFER[/SNAPLEN] (e.g. 16M/128)");
                let buffer = parse_count(buffer, 1024)
                    .filter(|b| b.is_power_of_two() && *b >= 4096 && *b <= u64::from(u32::MAX))
                    .ok_or_else(bad)? as u32;
                let snaplen = match snaplen {
                    Some(s) => Some(s.trim().parse::<u32>().map_err(|_| bad())?),
                    None => None,
                };
                Ok(Config { buffer, snaplen })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let refine_text = env_or("BPFRR_LIVE_REFINE", "3");
        let refine = refine_text
            .parse()
            .map_err(|_| format!("BPFRR_LIVE_REFINE: {refine_text:?} is not a whole number"))?;
        Ok(Settings {
            rates,
            duration: Duration::from_secs_f64(secs),
            configs,
            refine,
        })
    }

    // ---------------------------------------------------------------
    // The kernel's program statistics

    /// Keeps the kernel's per-program run statistics on (run_cnt,
    /// run_time_ns) while alive (BPF_ENABLE_STATS: the kernel turns them off
    /// again when the last such fd closes).
    struct StatsOn(#[allow(dead_code)] OwnedFd);

    impl StatsOn {
        fn enable() -> Result<StatsOn, String> {
            const BPF_ENABLE_STATS: libc::c_long = 32;
            // union bpf_attr with enable_stats.type = BPF_STATS_RUN_TIME (0).
            let attr = [0u64; 16];
            // SAFETY: the bpf system call reads `attr` (128 zeroed bytes, the
            // size given) and returns a new fd or -1.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_ENABLE_STATS,
                    attr.as_ptr(),
                    std::mem::size_of_val(&attr),
                )
            };
            if fd < 0 {
                return Err(format!(
                    "BPF_ENABLE_STATS: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: the kernel just returned this fd to us.
            Ok(StatsOn(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
        }
    }

    /// Time the calling thread has spent waiting on a run queue (runnable,
    /// but another task had the CPU), from /proc/thread-self/schedstat.
    fn run_queue_wait() -> Duration {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
            .map_or(Duration::ZERO, Duration::from_nanos)
    }

    /// A program's (runs, ns spent running) so far.
    #[derive(Clone, Copy, Debug, Default)]
    struct RunCounters {
        runs: u64,
        ns: u64,
    }

    impl RunCounters {
        fn read(prog: BorrowedFd<'_>) -> RunCounters {
            bpfrr_recorder::sys::prog_info(prog).map_or_else(
                |_| RunCounters::default(),
                |i| RunCounters {
                    runs: i.run_cnt,
                    ns: i.run_time_ns,
                },
            )
        }

        fn since(self, before: RunCounters) -> RunCounters {
            RunCounters {
                runs: self.runs.saturating_sub(before.runs),
                ns: self.ns.saturating_sub(before.ns),
            }
        }

        fn ns_per_run(self) -> Option<f64> {
            (self.runs > 0).then(|| self.ns as f64 / self.runs as f64)
        }
    }

    // ---------------------------------------------------------------
    // The packet generator

    /// Signals between the recording thread and the generator.
    #[derive(Default)]
    struct Gate {
        /// The program is attached: start sending.
        go: AtomicBool,
        /// The recording failed before it started: do not wait for `go`.
        abort: AtomicBool,
        /// The generator has finished (or failed).
        done: AtomicBool,
        /// When it finished.
        done_at: Mutex<Option<Instant>>,
    }

    impl Gate {
        fn finish(&self) {
            *self.done_at.lock().unwrap() = Some(Instant::now());
            self.done.store(true, Ordering::SeqCst);
        }
    }

    /// What the generator did.
    #[derive(Clone, Copy, Debug, Default)]
    struct Sent {
        frames: u64,
        /// sendmmsg calls that failed (ENOBUFS and the like), retried.
        failures: u64,
        wall: Duration,
        /// The sending thread's CPU time: the system calls, and the XDP
        /// program itself when the kernel runs the receive softirq on the
        /// way out of them.
        cpu: Duration,
        /// Its time waiting for a CPU (runnable).
        waiting: Duration,
    }

    /// Sends `frame` out of `iface` (in the calling thread's namespace) at
    /// `rate` frames per second (None: as fast as possible) for `duration`,
    /// once `gate.go` is set. Pacing: before each call, the frames due by
    /// now are sent in one sendmmsg (at most [`BATCH`]); when none is due
    /// the thread sleeps 50 µs.
    fn generate(
        iface: &str,
        frame: &[u8],
        rate: Option<u64>,
        duration: Duration,
        gate: &Gate,
    ) -> Result<Sent, String> {
        let result = send_paced(iface, frame, rate, duration, gate);
        gate.finish();
        result
    }

    fn send_paced(
        iface: &str,
        frame: &[u8],
        rate: Option<u64>,
        duration: Duration,
        gate: &Gate,
    ) -> Result<Sent, String> {
        let socket = PacketSocket::open(iface)?;
        while !gate.go.load(Ordering::SeqCst) {
            if gate.abort.load(Ordering::SeqCst) {
                return Err("the recording did not start".to_string());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let cpu0 = ThreadTime::now();
        let wait0 = run_queue_wait();
        let t0 = Instant::now();
        let mut sent = Sent::default();
        loop {
            let elapsed = t0.elapsed();
            if elapsed >= duration {
                break;
            }
            let due = match rate {
                Some(r) => (r as f64 * elapsed.as_secs_f64()) as u64,
                None => u64::MAX,
            };
            let n = due.saturating_sub(sent.frames).min(BATCH as u64) as usize;
            if n == 0 {
                std::thread::sleep(Duration::from_micros(50));
                continue;
            }
            match socket.send(frame, n) {
                Ok(k) => sent.frames += k as u64,
                Err(_) => {
                    sent.failures += 1;
                    std::thread::yield_now();
                }
            }
        }
        sent.wall = t0.elapsed();
        sent.cpu = cpu0.elapsed();
        sent.waiting = run_queue_wait().saturating_sub(wait0);
        Ok(sent)
    }

    /// An AF_PACKET socket that sends raw frames out of one interface.
    struct PacketSocket {
        fd: OwnedFd,
        addr: libc::sockaddr_ll,
    }

    impl PacketSocket {
        fn open(iface: &str) -> Result<PacketSocket, String> {
            let name = std::ffi::CString::new(iface).map_err(|e| e.to_string())?;
            // SAFETY: plain libc calls; `name` is a valid C string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            if ifindex == 0 {
                return Err(format!("no interface {iface} in this namespace"));
            }
            // Protocol 0: the socket sends only, it receives nothing.
            // SAFETY: creates a socket; the result is checked.
            let raw =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            if raw < 0 {
                return Err(format!(
                    "AF_PACKET socket: {}",
                    std::io::Error::last_os_error()
                ));
            }
            // SAFETY: `raw` is a new socket this function owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: sockaddr_ll is plain data; all-zero is a valid value.
            let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            addr.sll_family = libc::AF_PACKET as u16;
            addr.sll_ifindex = ifindex as i32;
            addr.sll_halen = 6;
            Ok(PacketSocket { fd, addr })
        }

        /// Sends `n` copies of `frame` (n <= BATCH) in one sendmmsg; returns
        /// how many the kernel took.
        fn send(&self, frame: &[u8], n: usize) -> std::io::Result<usize> {
            let mut iov = libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            };
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for m in msgs.iter_mut().take(n) {
                m.msg_hdr.msg_name = (&self.addr as *const libc::sockaddr_ll).cast_mut().cast();
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                m.msg_hdr.msg_iov = &mut iov;
                m.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the n headers point at `self.addr` and `iov`, which
            // point at `frame`; all outlive the call, which only reads them
            // (and writes each header's msg_len).
            let rc = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
            if rc < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(rc as usize)
            }
        }
    }

    // ---------------------------------------------------------------
    // The reference: the original program, no recorder

    struct Reference {
        target: Option<u64>,
        sent: Sent,
        runs: RunCounters,
    }

    fn run_reference(
        ns: &NetNs,
        frame: &[u8],
        rate: Option<u64>,
        duration: Duration,
    ) -> Result<Reference, String> {
        let mut obj = open_sample("xdp_fw");
        let prog = load(&mut obj, "xdp_firewall");
        let spec = xdp_spec();
        let link = ns
            .run(|| spec.attach(attach_program(&prog)))
            .map_err(|e| e.to_string())?;
        let gate = Gate::default();
        gate.go.store(true, Ordering::SeqCst);
        let before = RunCounters::read(prog.fd.as_fd());
        let sent = ns.run(|| generate(TX, frame, rate, duration, &gate))?;
        let runs = RunCounters::read(prog.fd.as_fd()).since(before);
        drop(link);
        Ok(Reference {
            target: rate,
            sent,
            runs,
        })
    }

    fn xdp_spec() -> AttachSpec {
        AttachSpec::Xdp(XdpTarget {
            iface: RX.to_string(),
            mode: XdpMode::Generic,
        })
    }

    // ---------------------------------------------------------------
    // A recording under load

    /// The live driver `bpfrr record --xdp` uses, plus what the bench
    /// needs around it: it lets the generator go once the instrumented
    /// program is attached, counts the program's runs, notes the reader
    /// thread's CPU time from that moment, and ends the recording when the
    /// generator is done.
    struct LoadedLive<'g> {
        inner: LiveDriver,
        gate: &'g Gate,
        prog: Option<OwnedFd>,
        runs_at_start: RunCounters,
        runs: RunCounters,
        cpu_at_start: Option<Duration>,
        wait_at_start: Option<Duration>,
        wall_at_start: Option<Instant>,
    }

    impl Driver for LoadedLive<'_> {
        fn attach_point(&self) -> String {
            self.inner.attach_point()
        }

        fn capture_hints(&self) -> CaptureHints {
            self.inner.capture_hints()
        }

        fn start(&mut self, target: &DriverTarget<'_>) -> Result<(), DriverError> {
            self.inner.start(target)?;
            let prog = target
                .prog_fd
                .try_clone_to_owned()
                .map_err(|e| DriverError::new(e.to_string()))?;
            self.runs_at_start = RunCounters::read(prog.as_fd());
            self.prog = Some(prog);
            self.cpu_at_start = Some(ThreadTime::now().as_duration());
            self.wait_at_start = Some(run_queue_wait());
            self.wall_at_start = Some(Instant::now());
            self.gate.go.store(true, Ordering::SeqCst);
            Ok(())
        }

        fn step(&mut self, budget: Duration) -> Result<Step, DriverError> {
            if self.gate.done.load(Ordering::SeqCst) {
                if let Some(prog) = &self.prog {
                    self.runs = RunCounters::read(prog.as_fd()).since(self.runs_at_start);
                }
                return Ok(Step::Finished);
            }
            self.inner.step(budget)
        }

        fn stop(&mut self) -> Result<(), DriverError> {
            self.inner.stop()
        }
    }

    struct Recording {
        target: Option<u64>,
        config: Config,
        sent: Sent,
        /// Runs of the instrumented program while attached.
        runs: RunCounters,
        recorded: u64,
        /// Records the probes could not write (ring buffer full), all CPUs.
        lost: u64,
        /// The reader thread's CPU time from attach to the trace written.
        reader_cpu: Duration,
        /// The reader's time waiting for a CPU (runnable) in the same span.
        reader_waiting: Duration,
        /// Wall time of the same span.
        reader_wall: Duration,
        /// From the generator's last frame to the trace written: the
        /// backlog the reader still had to drain (plus closing the trace).
        catch_up: Duration,
        trace_bytes: u64,
    }

    impl Recording {
        fn lossless(&self) -> bool {
            self.lost == 0 && self.runs.runs == self.recorded
        }
    }

    fn run_recording(
        ns: &NetNs,
        frame: &[u8],
        rate: Option<u64>,
        config: Config,
        duration: Duration,
    ) -> Result<Recording, String> {
        let output = trace_path();
        let opts = RecordOptions {
            object: crate::netns::samples::samples_dir().join("xdp_fw.bpf.o"),
            output: output.clone(),
            prepare: PrepareOptions {
                program: Some("xdp_firewall".to_string()),
                snaplen: config.snaplen,
                buffer_size: Some(config.buffer),
                ..PrepareOptions::default()
            },
            stop: StopConditions::default(),
            command_line: vec!["live_xdp bench".to_string()],
            status_line: false,
        };
        let gate = Gate::default();
        let (sent, recorded) = std::thread::scope(|s| {
            let generator = s.spawn(|| ns.run(|| generate(TX, frame, rate, duration, &gate)));
            let recorded = ns.run(|| {
                let mut driver = LoadedLive {
                    inner: LiveDriver::new(xdp_spec()),
                    gate: &gate,
                    prog: None,
                    runs_at_start: RunCounters::default(),
                    runs: RunCounters::default(),
                    cpu_at_start: None,
                    wait_at_start: None,
                    wall_at_start: None,
                };
                let report = record(&opts, &mut driver, Interrupt::manual().handle());
                let cpu = ThreadTime::now().as_duration();
                let waited = run_queue_wait();
                let end = Instant::now();
                gate.abort.store(true, Ordering::SeqCst);
                let report = report.map_err(|e| format!("recording failed: {e}"))?;
                Ok::<_, String>((
                    report,
                    driver.runs,
                    cpu.saturating_sub(driver.cpu_at_start.unwrap_or_default()),
                    waited.saturating_sub(driver.wait_at_start.unwrap_or_default()),
                    driver.wall_at_start.map_or(Duration::ZERO, |t| end - t),
                    end,
                ))
            });
            let sent = generator
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            (sent, recorded)
        });
        let _ = std::fs::remove_file(&output);
        let (report, runs, reader_cpu, reader_waiting, reader_wall, end) = recorded?;
        let sent = sent?;
        let done_at = gate.done_at.lock().unwrap().unwrap_or(end);
        Ok(Recording {
            target: rate,
            config,
            sent,
            runs,
            recorded: report.invocations,
            lost: report.lost.iter().map(|l| l.count).sum(),
            reader_cpu,
            reader_waiting,
            reader_wall,
            catch_up: end.saturating_duration_since(done_at),
            trace_bytes: report.summary.size_bytes,
        })
    }

    fn trace_path() -> PathBuf {
        std::env::temp_dir().join(format!("bpfrr-live-xdp-bench-{}.bpfrr", std::process::id()))
    }

    // ---------------------------------------------------------------
    // Output

    fn format_size(bytes: u32) -> String {
        if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
            format!("{} MiB", bytes >> 20)
        } else if bytes.is_multiple_of(1 << 10) {
            format!("{} KiB", bytes >> 10)
        } else {
            format!("{bytes} B")
        }
    }

    fn format_rate(rate: Option<u64>) -> String {
        match rate {
            None => "flat out".to_string(),
            Some(r) if r >= 1000 && r.is_multiple_of(1000) => format!("{}k", r / 1000),
            Some(r) => r.to_string(),
        }
    }

    /// Per second over the generator's sending time.
    fn per_sec(n: u64, wall: Duration) -> f64 {
        n as f64 / wall.as_secs_f64().max(1e-9)
    }

    fn thousands(x: f64) -> String {
        let n = x.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    }

    fn ns_cell(c: RunCounters) -> String {
        c.ns_per_run().map_or("n/a".into(), |ns| format!("{ns:.0}"))
    }

    fn percent(part: Duration, whole: Duration) -> String {
        format!(
            "{:.0} %",
            100.0 * part.as_secs_f64() / whole.as_secs_f64().max(1e-9)
        )
    }

    fn reference_row(r: &Reference) -> String {
        format!(
            "| {} | {} | {} | {} | {} / {} |",
            format_rate(r.target),
            thousands(per_sec(r.sent.frames, r.sent.wall)),
            thousands(per_sec(r.runs.runs, r.sent.wall)),
            ns_cell(r.runs),
            percent(r.sent.cpu, r.sent.wall),
            percent(r.sent.waiting, r.sent.wall),
        )
    }

    fn recording_row(r: &Recording) -> String {
        let per_inv = if r.recorded > 0 {
            format!(
                "{:.2}",
                r.reader_cpu.as_secs_f64() * 1e6 / r.recorded as f64
            )
        } else {
            "n/a".to_string()
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {} / {} | {} | {:.0} |",
            r.config.label(),
            format_rate(r.target),
            thousands(per_sec(r.sent.frames, r.sent.wall)),
            thousands(per_sec(r.runs.runs, r.sent.wall)),
            thousands(per_sec(r.recorded, r.sent.wall)),
            thousands(r.lost as f64),
            thousands(r.runs.runs.saturating_sub(r.recorded) as f64),
            ns_cell(r.runs),
            percent(r.sent.cpu, r.sent.wall),
            percent(r.sent.waiting, r.sent.wall),
            percent(r.reader_cpu, r.reader_wall),
            percent(r.reader_waiting, r.reader_wall),
            per_inv,
            r.catch_up.as_secs_f64() * 1e3,
        )
    }

    fn load_average() -> String {
        std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    }

    fn machine() -> String {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "?".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        format!("{cpus} CPUs ({cpu}), Linux {kernel}")
    }

    // ---------------------------------------------------------------

    pub fn main() {
        if !bpfrr_recorder::sys::is_root() {
            println!(
                "live_xdp: skipped (namespaces, veth and XDP need root: sudo -E cargo bench -p bpfrr-recorder --bench live_xdp)"
            );
            return;
        }
        let settings = match settings() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("live_xdp: {e}");
                std::process::exit(2);
            }
        };
        let _stats = match StatsOn::enable() {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("live_xdp: {e}: run counts and ns per run are not available");
                None
            }
        };
        let load_before = load_average();
        let ns = NetNs::create("livexdp");
        ns.veth_pair(TX, RX);
        // 64 bytes: Ethernet + IPv4 + UDP 40000 -> 53 + 22 bytes of payload.
        let frame = udp_frame(40000, 53, &[0u8; 22]);
        let secs = settings.duration;

        eprintln!("live_xdp: {}, load average {load_before}", machine());
        let mut references = Vec::new();
        for &rate in &settings.rates {
            match run_reference(&ns, &frame, rate, secs) {
                Ok(r) => {
                    eprintln!("  reference {}: {}", format_rate(rate), reference_row(&r));
                    references.push(r);
                }
                Err(e) => eprintln!("  reference {}: failed: {e}", format_rate(rate)),
            }
        }

        let mut recordings: Vec<Recording> = Vec::new();
        let mut thresholds = Vec::new();
        for &config in &settings.configs {
            let mut rows: Vec<Recording> = Vec::new();
            let measure = |rate: Option<u64>, rows: &mut Vec<Recording>| match run_recording(
                &ns, &frame, rate, config, secs,
            ) {
                Ok(r) => {
                    eprintln!(
                        "  recording {}: {} (trace {:.0} bytes/invocation)",
                        format_rate(rate),
                        recording_row(&r),
                        r.trace_bytes as f64 / r.recorded.max(1) as f64
                    );
                    rows.push(r);
                }
                Err(e) => eprintln!(
                    "  recording {} {}: failed: {e}",
                    config.label(),
                    format_rate(rate)
                ),
            };
            for &rate in &settings.rates {
                measure(rate, &mut rows);
            }
            // Narrow down: between the fastest lossless run and the slowest
            // lossy one that sent faster (by the rates actually sent).
            for _ in 0..settings.refine {
                let sent = |r: &Recording| per_sec(r.sent.frames, r.sent.wall);
                let low = rows
                    .iter()
                    .filter(|r| r.lossless())
                    .map(sent)
                    .fold(0.0, f64::max);
                let high = rows
                    .iter()
                    .filter(|r| !r.lossless() && sent(r) > low)
                    .map(sent)
                    .fold(f64::INFINITY, f64::min);
                if low <= 0.0 || !high.is_finite() || high / low < 1.1 {
                    break;
                }
                let mid = ((low * high).sqrt() / 1000.0).round() as u64 * 1000;
                let before = rows.len();
                measure(Some(mid.max(1000)), &mut rows);
                // A sender that cannot reach the rate (its CPU share on a
                // busy machine) makes more runs here pointless.
                if rows.len() == before || sent(&rows[before]) < 0.9 * mid as f64 {
                    break;
                }
            }
            // In order of target rate, flat out last.
            rows.sort_by_key(|r| r.target.unwrap_or(u64::MAX));
            let best = rows.iter().filter(|r| r.lossless()).max_by(|a, b| {
                per_sec(a.recorded, a.sent.wall).total_cmp(&per_sec(b.recorded, b.sent.wall))
            });
            let first_loss = rows.iter().filter(|r| !r.lossless()).min_by(|a, b| {
                per_sec(a.sent.frames, a.sent.wall).total_cmp(&per_sec(b.sent.frames, b.sent.wall))
            });
            thresholds.push(format!(
                "- {}: {}; {}.",
                config.label(),
                best.map_or("no run was lossless".to_string(), |r| format!(
                    "highest lossless: {} invocations recorded per second ({} target)",
                    thousands(per_sec(r.recorded, r.sent.wall)),
                    format_rate(r.target)
                )),
                first_loss.map_or("no run lost records".to_string(), |r| format!(
                    "loss from {} frames per second sent ({} target: {} records lost, {} runs not recorded)",
                    thousands(per_sec(r.sent.frames, r.sent.wall)),
                    format_rate(r.target),
                    thousands(r.lost as f64),
                    thousands(r.runs.runs.saturating_sub(r.recorded) as f64)
                )),
            ));
            recordings.extend(rows);
        }
        let load_after = load_average();
        drop(ns);

        println!();
        println!(
            "Machine: {}. Load average (1, 5, 15 min) {load_before} before, {load_after} after. {} s per run, 64-byte UDP frames, generic XDP on a veth.",
            machine(),
            secs.as_secs_f64()
        );
        println!();
        println!("Reference: the original xdp_fw, no recorder.");
        println!();
        println!(
            "| target pps | sent/s | program runs/s | kernel ns/run | sender CPU / waiting for a CPU |"
        );
        println!("|---|---:|---:|---:|---:|");
        for r in &references {
            println!("{}", reference_row(r));
        }
        println!();
        println!("Recording (`record::record`, live driver, trace written):");
        println!();
        println!(
            "| buffer | target pps | sent/s | program runs/s | recorded/s | records lost | runs not recorded | kernel ns/run | sender CPU / waiting for a CPU | reader CPU / waiting for a CPU | reader µs/invocation | catch-up ms |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &recordings {
            println!("{}", recording_row(r));
        }
        println!();
        println!("Where loss starts:");
        println!();
        for t in &thresholds {
            println!("{t}");
        }
    }
}
