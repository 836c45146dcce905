//! `bpfrr record OBJ [--prog NAME] (--pcap FILE | --packet HEX | --ctx FILE)
//! [--repeat N] [--snaplen N] [--buffer SIZE] [--count N] [--until-retval V]
//! -o TRACE`: records a program's runs in the kernel (BPF_PROG_TEST_RUN on
//! the given inputs), writes the trace, then replays every invocation and
//! prints `N/N invocations replayed identically` (non-zero exit otherwise).
//! Live instead of test runs: `--xdp IFACE [--xdp-mode generic|native]`,
//! `--tc IFACE:ingress|egress`, `--tracepoint CAT:NAME`,
//! `--raw-tracepoint NAME`, `--uprobe PATH:SYMBOL`, `--fentry FUNC`,
//! `--tp-btf NAME`, `--cgroup PATH` (until a stop condition or Ctrl-C).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bpfrr_recorder::attach::{self, AttachSpec, LiveDriver};
use bpfrr_recorder::record::fidelity::{check_trace, report_lines};
use bpfrr_recorder::record::testrun_driver::{parse_hex, read_pcap_file};
use bpfrr_recorder::record::{PrepareOptions, RecordOptions, TestInput, TestRunDriver, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions, format_bytes};

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
            eprintln!("recording {spec} (Ctrl-C to stop)");
            let mut driver = LiveDriver::new(spec);
            let report = record(&opts, &mut driver, interrupt.handle());
            for note in driver.notes() {
                eprintln!("note: {note}");
            }
            report?
        }
        None => {
            let inputs = inputs(&a)?;
            if inputs.is_empty() {
                bail!(
                    "the inputs hold no packet: give a pcap with packets, --packet HEX or --ctx FILE"
                );
            }
            let mut driver = TestRunDriver::new(inputs, a.repeat);
            record(&opts, &mut driver, interrupt.handle())?
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
    if report.incomplete > 0 || report.orphans > 0 {
        println!(
            "{} invocations are incomplete and {} records had no invocation (ring buffer full: try a larger --buffer)",
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
