//! `bpfrr info TRACE [--json]`: what a trace holds, without replaying it.
//!
//! Everything shown comes from the trace's directory (`TraceSummary`), so
//! this is instant for any trace size. The text follows bpftool's style:
//! one line per object, `key value` pairs separated by two spaces, details
//! indented by a tab.

use std::fmt::Write as _;
use std::path::PathBuf;

use bpfrr_trace::trace::{RetvalCount, Trace, TraceSummary};

#[derive(clap::Args)]
pub struct Args {
    /// The trace file.
    pub trace: PathBuf,
    /// Print the summary as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let trace = Trace::open(&args.trace)?;
    let summary = trace.summary();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", render_text(&summary));
    }
    Ok(())
}

/// The human-readable summary.
pub fn render_text(s: &TraceSummary) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let w = &mut out;
    let _ = writeln!(
        w,
        "{}: bpfrr trace  format {}  size {} ({} bytes)",
        s.file,
        s.format_version,
        human_size(s.size_bytes),
        s.size_bytes
    );
    let host = s.hostname.as_deref().unwrap_or("unknown host");
    let _ = writeln!(
        w,
        "\trecorded {}  host {}  kernel {}  arch {}  cpus {}  bpfrr {}",
        utc_time(s.start_time_ns),
        host,
        or_unknown(&s.kernel_release),
        or_unknown(&s.arch),
        s.n_cpus,
        or_unknown(&s.bpfrr_version)
    );
    if !s.command.is_empty() {
        let _ = writeln!(w, "\tcommand: {}", shell_words(&s.command));
    }
    if !s.notes.is_empty() {
        let _ = writeln!(w, "\tnotes: {}", s.notes.replace('\n', " "));
    }
    let _ = writeln!(
        w,
        "invocations {}  partial {}  blocks {}",
        s.invocation_count, s.partial_invocations, s.block_count
    );
    if s.invocation_count > 0 {
        let _ = writeln!(w, "\tretvals {}", retvals(&s.retvals, s.other_retvals));
    }
    let _ = writeln!(w, "lost records {}", s.lost_total);
    if !s.lost.is_empty() {
        let per_cpu: Vec<String> = s
            .lost
            .iter()
            .map(|l| format!("cpu {}: {}", l.cpu, l.count))
            .collect();
        let _ = writeln!(w, "\t{}", per_cpu.join("  "));
    }

    let _ = writeln!(w, "programs {}", s.programs.len());
    for p in &s.programs {
        let _ = writeln!(
            w,
            "{}: {}  name {}  section {}  attach {}",
            p.id,
            p.prog_type_name,
            p.name,
            or_unknown(&p.section),
            or_unknown(&p.attach_point)
        );
        let mut details = format!("\tinsns {}", p.insn_count);
        if p.has_btf {
            let _ = write!(details, "  btf  line_info {}", p.line_info_count);
        }
        match (p.verifier_accepted, p.verifier_insns_processed) {
            (Some(true), Some(n)) => {
                let _ = write!(details, "  verifier accepted ({n} insns processed)");
            }
            (Some(false), _) => details.push_str("  verifier rejected"),
            _ => {}
        }
        if let Some(jit) = p.jit_bytes {
            let _ = write!(details, "  jited {jit}B");
        }
        let _ = writeln!(w, "{details}");
        let _ = write!(
            w,
            "\tinvocations {}  partial {}",
            p.invocations, p.partial_invocations
        );
        if p.invocations > 0 {
            let _ = write!(w, "  retvals {}", retvals(&p.retvals, p.other_retvals));
        }
        let _ = writeln!(w);
    }

    let _ = writeln!(w, "maps {}", s.maps.len());
    for m in &s.maps {
        let _ = writeln!(
            w,
            "{}: {}  name {}  flags {:#x}{}",
            m.id,
            m.map_type_name,
            m.name,
            m.flags,
            if m.frozen { "  frozen" } else { "" }
        );
        let entries = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        let _ = writeln!(
            w,
            "\tkey {}B  value {}B  max_entries {}  entries at start {}  at end {}",
            m.key_size,
            m.value_size,
            m.max_entries,
            entries(m.entries_at_start),
            entries(m.entries_at_end)
        );
    }
    out
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "unknown" } else { s }
}

/// "1:10 2:90" (value:count), plus "other:N" when the histogram overflowed.
fn retvals(counts: &[RetvalCount], other: u64) -> String {
    let mut parts: Vec<String> = counts
        .iter()
        .map(|r| format!("{}:{}", signed_if_negative(r.value), r.count))
        .collect();
    if other > 0 {
        parts.push(format!("other:{other}"));
    }
    parts.join(" ")
}

/// Return values such as -EINVAL read better as signed numbers.
fn signed_if_negative(v: u64) -> String {
    let signed = v as i64;
    if (-4096..0).contains(&signed) {
        signed.to_string()
    } else {
        v.to_string()
    }
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The command line as a shell would accept it back.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "2023-11-14 22:13:20 UTC" from nanoseconds since the epoch ("unknown" for 0).
fn utc_time(ns: u64) -> String {
    if ns == 0 {
        return "unknown".to_string();
    }
    let secs = ns / 1_000_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after H. Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(
            utc_time(1_700_000_000_000_000_000),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(utc_time(951_782_400_000_000_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_time(1), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(0), "unknown");
    }

    #[test]
    fn sizes_and_words() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
        assert_eq!(
            shell_words(&["bpfrr".into(), "a b".into(), "it's".into(), "".into()]),
            "bpfrr 'a b' 'it'\\''s' ''"
        );
    }

    #[test]
    fn negative_errnos_print_signed() {
        assert_eq!(signed_if_negative((-22i64) as u64), "-22");
        assert_eq!(signed_if_negative(2), "2");
        assert_eq!(signed_if_negative(u64::MAX / 2), (u64::MAX / 2).to_string());
    }
}
