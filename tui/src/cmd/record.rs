//! `bpfrr record OBJ [--prog NAME] (--pcap FILE | --packet HEX | --ctx FILE)
//! [--repeat N] [--snaplen N] [--buffer SIZE] [--count N] [--until-retval V]
//! -o TRACE`: records a program's runs in the kernel (BPF_PROG_TEST_RUN on
//! the given inputs), writes the trace, then replays every invocation and
//! prints `N/N invocations replayed identically` (non-zero exit otherwise).
//! Live instead of test runs: `--xdp IFACE [--xdp-mode generic|native]`,
//! `--tc IFACE:ingress|egress`, `--tracepoint CAT:NAME`,
//! `--raw-tracepoint NAME`, `--uprobe PATH:SYMBOL`, `--fentry FUNC`,
//! `--tp-btf NAME`, `--cgroup PATH` (until a stop condition or Ctrl-C).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bpfrr_recorder::attach::{self, AttachSpec, LiveDriver};
use bpfrr_recorder::load::LoadError;
use bpfrr_recorder::record::fidelity::{check_trace, report_lines};
use bpfrr_recorder::record::testrun_driver::{parse_hex, read_pcap_file};
use bpfrr_recorder::record::{
    CaptureHints, Driver, DriverError, DriverTarget, PrepareError, PrepareOptions, RecordError,
    RecordOptions, Step, TestInput, TestRunDriver, record,
};
use bpfrr_recorder::stop::{Interrupt, StopConditions, format_bytes};
use bpfrr_recorder::sys::SysError;
use bpfrr_trace::object::ObjectError;
use bpfrr_trace::trace::TraceErrorKind;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["pcap", "packet", "ctx", "xdp", "tc", "tracepoint", "raw_tracepoint", "uprobe", "fentry", "tp_btf", "cgroup"])))]
pub struct Args {
    /// The BPF object file (clang -target bpf).
    obj: PathBuf,
    /// The program to record (its function name); default: the first.
    #[arg(long)]
    prog: Option<String>,
    /// Run once per packet of this pcap file (Ethernet frames).
    #[arg(long)]
    pcap: Vec<PathBuf>,
    /// Run once on this packet (an Ethernet frame as hex); may be repeated.
    #[arg(long)]
    packet: Vec<String>,
    /// The context: raw tracepoint arguments (u64 each), or with packets the
    /// `xdp_md` / `__sk_buff` fields a test run may set.
    #[arg(long)]
    ctx: Option<PathBuf>,
    /// Run each input this many times.
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Live attachment (instead of test-run inputs).
    #[command(flatten)]
    live: Box<LiveArgs>,
    /// Bytes of each packet recorded at entry and exit (default: all).
    #[arg(long)]
    snaplen: Option<u32>,
    /// Ring buffer size (power of two, e.g. 16M, 256K, 65536).
    #[arg(long, default_value = "16M")]
    buffer: String,
    /// Stop after this many invocations.
    #[arg(long)]
    count: Option<String>,
    /// Stop after this long (e.g. 10s, 2m).
    #[arg(long)]
    duration: Option<String>,
    /// Stop right after the first invocation returning this value (a number
    /// or a name: XDP_DROP, TC_ACT_SHOT, ...).
    #[arg(long)]
    until_retval: Option<String>,
    /// The trace file to write.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Skip the fidelity check (replaying every invocation) at the end.
    #[arg(long)]
    no_check: bool,
}

/// The live-attachment options (boxed: they would make `Args` large).
#[derive(clap::Args)]
struct LiveArgs {
    /// Live: attach the XDP program to this interface.
    #[arg(long, value_name = "IFACE")]
    xdp: Option<String>,
    /// With --xdp: generic, native or auto (the kernel's choice).
    #[arg(long, value_name = "MODE", requires = "xdp")]
    xdp_mode: Option<String>,
    /// Live: attach the TC program to IFACE:ingress or IFACE:egress (tcx).
    #[arg(long, value_name = "IFACE:DIR")]
    tc: Option<String>,
    /// Live: attach the tracepoint program to CAT:NAME.
    #[arg(long, value_name = "CAT:NAME")]
    tracepoint: Option<String>,
    /// Live: attach the raw tracepoint program to NAME.
    #[arg(long, value_name = "NAME")]
    raw_tracepoint: Option<String>,
    /// Live: attach the uprobe program to PATH:SYMBOL (or PATH:0xOFFSET).
    #[arg(long, value_name = "PATH:SYMBOL")]
    uprobe: Option<String>,
    /// Live: attach the fentry/fexit program to kernel function FUNC.
    #[arg(long, value_name = "FUNC")]
    fentry: Option<String>,
    /// Live: attach the tp_btf program to BTF tracepoint NAME.
    #[arg(long, value_name = "NAME")]
    tp_btf: Option<String>,
    /// Live: attach the cgroup_skb program to this cgroup v2 directory.
    #[arg(long, value_name = "PATH")]
    cgroup: Option<String>,
}

/// Parses `16M`, `256K`, `1MiB`, `65536`.
fn parse_size(text: &str) -> anyhow::Result<u32> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower
        .strip_suffix("mib")
        .or_else(|| lower.strip_suffix("mb"))
        .or_else(|| lower.strip_suffix('m'))
    {
        (n.to_string(), 1u64 << 20)
    } else if let Some(n) = lower
        .strip_suffix("kib")
        .or_else(|| lower.strip_suffix("kb"))
        .or_else(|| lower.strip_suffix('k'))
    {
        (n.to_string(), 1 << 10)
    } else if let Some(n) = lower
        .strip_suffix("gib")
        .or_else(|| lower.strip_suffix('g'))
    {
        (n.to_string(), 1 << 30)
    } else {
        (lower.clone(), 1)
    };
    let n: u64 = num
        .trim()
        .parse()
        .with_context(|| format!("--buffer {t}: not a size (use e.g. 16M, 256K or 65536)"))?;
    let bytes = n.saturating_mul(mult);
    if bytes < 4096 || !bytes.is_power_of_two() || bytes > 1 << 31 {
        bail!(
            "--buffer {t}: the ring buffer size must be a power of two between 4K and 2G (e.g. 16M)"
        );
    }
    Ok(bytes as u32)
}

fn inputs(a: &Args) -> anyhow::Result<Vec<TestInput>> {
    let ctx = match &a.ctx {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?),
        None => None,
    };
    let mut frames = Vec::new();
    for p in &a.pcap {
        frames.extend(read_pcap_file(p).map_err(anyhow::Error::msg)?);
    }
    for (i, h) in a.packet.iter().enumerate() {
        frames.push(parse_hex(h).map_err(|e| anyhow::anyhow!("--packet #{}: {e}", i + 1))?);
    }
    if frames.is_empty() {
        return Ok(ctx.into_iter().map(TestInput::Context).collect());
    }
    Ok(frames
        .into_iter()
        .map(|frame| TestInput::Packet {
            frame,
            ctx: ctx.clone(),
        })
        .collect())
}

/// The live attachment the options ask for, if any (one at most, and not
/// together with test-run inputs).
fn live_spec(a: &Args) -> anyhow::Result<Option<AttachSpec>> {
    let err = |e: attach::AttachError| anyhow::anyhow!("{e}");
    let mut specs = Vec::new();
    if let Some(t) = &a.live.xdp {
        let mut target = attach::XdpTarget::parse(t).map_err(err)?;
        if let Some(m) = &a.live.xdp_mode {
            target.mode = attach::XdpMode::parse(m).map_err(err)?;
        }
        specs.push(AttachSpec::Xdp(target));
    }
    if let Some(t) = &a.live.tc {
        specs.push(AttachSpec::Tc(attach::TcTarget::parse(t).map_err(err)?));
    }
    if let Some(t) = &a.live.tracepoint {
        specs.push(AttachSpec::Tracepoint(
            attach::TracepointTarget::parse(t).map_err(err)?,
        ));
    }
    if let Some(t) = &a.live.raw_tracepoint {
        specs.push(AttachSpec::RawTracepoint(
            attach::RawTracepointTarget::parse(t).map_err(err)?,
        ));
    }
    if let Some(t) = &a.live.uprobe {
        specs.push(AttachSpec::Uprobe(
            attach::UprobeTarget::parse(t).map_err(err)?,
        ));
    }
    if let Some(t) = &a.live.fentry {
        specs.push(AttachSpec::Fentry(
            attach::FentryTarget::parse(t).map_err(err)?,
        ));
    }
    if let Some(t) = &a.live.tp_btf {
        specs.push(AttachSpec::TpBtf(
            attach::TpBtfTarget::parse(t).map_err(err)?,
        ));
    }
    if let Some(t) = &a.live.cgroup {
        specs.push(AttachSpec::Cgroup(
            attach::CgroupTarget::parse(t).map_err(err)?,
        ));
    }
    if specs.len() > 1 {
        bail!(
            "give one live attachment (--xdp, --tc, --tracepoint, ...), not {}",
            specs.len()
        );
    }
    if !specs.is_empty() && (!a.pcap.is_empty() || !a.packet.is_empty() || a.ctx.is_some()) {
        bail!(
            "--pcap, --packet and --ctx are test-run inputs: they cannot be combined with a live attachment"
        );
    }
    Ok(specs.pop())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let stop = StopConditions::from_args(
        a.count.as_deref(),
        a.duration.as_deref(),
        a.until_retval.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    let buffer = parse_size(&a.buffer)?;
    if a.repeat == 0 {
        bail!("--repeat 0 would run nothing: give at least 1");
    }
    let live = live_spec(&a)?;
    check_output(&a.output)?;
    let interrupt = Interrupt::install().map_err(anyhow::Error::msg)?;
    let opts = RecordOptions {
        object: a.obj.clone(),
        output: a.output.clone(),
        prepare: PrepareOptions {
            program: a.prog.clone(),
            snaplen: a.snaplen,
            buffer_size: Some(buffer),
            ..PrepareOptions::default()
        },
        stop,
        command_line: std::env::args().collect(),
        status_line: live.is_some(),
    };
    let report = match live {
        Some(spec) => {
            let mut driver = Announced {
                message: format!("recording {spec} (Ctrl-C to stop)"),
                inner: LiveDriver::new(spec),
            };
            let report = record(&opts, &mut driver, interrupt.handle());
            for note in driver.inner.notes() {
                eprintln!("note: {note}");
            }
            report.map_err(|e| one_line(e, &a.obj))?
        }
        None => {
            let inputs = inputs(&a)?;
            if inputs.is_empty() {
                bail!(
                    "the inputs hold no packet: give a pcap with packets, --packet HEX or --ctx FILE"
                );
            }
            let mut driver = TestRunDriver::new(inputs, a.repeat);
            record(&opts, &mut driver, interrupt.handle()).map_err(|e| one_line(e, &a.obj))?
        }
    };
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let lost: u64 = report.lost.iter().map(|l| l.count).sum();
    println!(
        "recorded {} invocations into {} ({}; {} records lost{})",
        report.invocations,
        report.trace.display(),
        report.stop,
        lost,
        if lost > 0 {
            format!(
                ": {}",
                report
                    .lost
                    .iter()
                    .map(|l| format!("cpu {} lost {}", l.cpu, l.count))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    );
    // Never silent: each CPU's loss on stderr too (the trace stores it).
    for l in &report.lost {
        eprintln!(
            "{} records lost on CPU {}: the ring buffer was full; use --buffer to enlarge it (it was {})",
            l.count, l.cpu, a.buffer
        );
    }
    if report.incomplete > 0 || report.orphans > 0 {
        println!(
            "{} invocations are incomplete and {} records had no invocation: an invocation wrote more than bpfrr's per-CPU record buffer holds (many calls, or a large --snaplen), or the recording stopped while it ran; they replay up to their last record",
            report.incomplete, report.orphans
        );
    }
    let size = std::fs::metadata(&report.trace).map_or(0, |m| m.len());
    println!("trace size {}", format_bytes(size));
    if a.no_check {
        return Ok(());
    }
    let summary = check_trace(&report.trace)?;
    for line in report_lines(&summary) {
        println!("{line}");
    }
    if !summary.all_identical() {
        bail!(
            "{} of {} invocations did not replay identically (see above)",
            summary.total - summary.identical,
            summary.total
        );
    }
    Ok(())
}

/// Refuses an `-o` path the trace could never be renamed to, before
/// anything is loaded: a missing directory, or a directory itself.
fn check_output(output: &Path) -> anyhow::Result<()> {
    if output.is_dir() {
        bail!(
            "-o {}: that is a directory; give a file name, e.g. {}",
            output.display(),
            output.join("trace.bpfrr").display()
        );
    }
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!(
            "-o {}: the directory {} does not exist; create it first (mkdir -p {}) or write the trace elsewhere",
            output.display(),
            parent.display(),
            parent.display()
        );
    }
    Ok(())
}

/// A recording error as one message: the error's own sentence (which
/// already includes its causes, so the cause chain is not repeated), the
/// privilege sentence wherever a missing privilege was the cause, and the
/// plain words for a full disk or a damaged object file.
fn one_line(e: RecordError, obj: &Path) -> anyhow::Error {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if let Some(s @ SysError::NeedsPrivilege { .. }) = c.downcast_ref::<SysError>() {
            return anyhow::anyhow!("{s}");
        }
        cause = c.source();
    }
    match &e {
        RecordError::Trace(t) => {
            if let TraceErrorKind::Io {
                writing: true,
                message,
            } = t.kind()
                && is_disk_full(message)
            {
                return anyhow::anyhow!(
                    "cannot write {}: the disk is full ({message}); free some space or write the trace to another file system with -o",
                    t.file()
                );
            }
        }
        RecordError::Prepare(PrepareError::Load(LoadError::Read { path, source })) => {
            return anyhow::anyhow!(
                "cannot read the object file {path}: {source}; check the path (OBJ is a .bpf.o built with clang -target bpf)"
            );
        }
        RecordError::Prepare(PrepareError::Load(LoadError::Object(o))) => {
            let what = match o {
                ObjectError::Malformed(_) => "; rebuild it (clang -target bpf) or copy it again",
                _ => "",
            };
            return anyhow::anyhow!("{}: {o}{what}", obj.display());
        }
        _ => {}
    }
    anyhow::anyhow!("{e}")
}

/// Whether an I/O error message is ENOSPC (28) or EDQUOT (122), as std
/// prints them ("No space left on device (os error 28)"): the trace error
/// keeps only the message.
fn is_disk_full(message: &str) -> bool {
    message.contains("(os error 28)") || message.contains("(os error 122)")
}

/// A live driver that says "recording ..." once it is attached, not
/// before: a recording that cannot attach prints only its error.
struct Announced {
    message: String,
    inner: LiveDriver,
}

impl Driver for Announced {
    fn attach_point(&self) -> String {
        self.inner.attach_point()
    }

    fn capture_hints(&self) -> CaptureHints {
        self.inner.capture_hints()
    }

    fn retarget(&self) -> Option<AttachSpec> {
        self.inner.retarget()
    }

    fn start(&mut self, target: &DriverTarget<'_>) -> Result<(), DriverError> {
        self.inner.start(target)?;
        eprintln!("{}", self.message);
        Ok(())
    }

    fn step(&mut self, budget: Duration) -> Result<Step, DriverError> {
        self.inner.step(budget)
    }

    fn stop(&mut self) -> Result<(), DriverError> {
        self.inner.stop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16M").unwrap(), 16 << 20);
        assert_eq!(parse_size("256k").unwrap(), 256 << 10);
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("65536").unwrap(), 65536);
        assert!(
            parse_size("3M")
                .unwrap_err()
                .to_string()
                .contains("power of two")
        );
        assert!(
            parse_size("lots")
                .unwrap_err()
                .to_string()
                .contains("not a size")
        );
        assert!(parse_size("1K").is_err());
    }
}
