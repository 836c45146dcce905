//! `bpfrr record OBJ [--prog NAME] (--pcap FILE | --packet HEX | --ctx FILE)
//! [--repeat N] [--snaplen N] [--buffer SIZE] [--count N] [--until-retval V]
//! -o TRACE`: records a program's runs in the kernel (BPF_PROG_TEST_RUN on
//! the given inputs), writes the trace, then replays every invocation and
//! prints `N/N invocations replayed identically` (non-zero exit otherwise).

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bpfrr_recorder::record::fidelity::{check_trace, report_lines};
use bpfrr_recorder::record::testrun_driver::{parse_hex, read_pcap_file};
use bpfrr_recorder::record::{PrepareOptions, RecordOptions, TestInput, TestRunDriver, record};
use bpfrr_recorder::stop::{Interrupt, StopConditions, format_bytes};

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).multiple(true).args(["pcap", "packet", "ctx"])))]
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
    let inputs = inputs(&a)?;
    if inputs.is_empty() {
        bail!("the inputs hold no packet: give a pcap with packets, --packet HEX or --ctx FILE");
    }
    let mut driver = TestRunDriver::new(inputs, a.repeat);
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
        status_line: false,
    };
    let report = record(&opts, &mut driver, interrupt.handle())?;
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
