//! The statistics the verifier prints at the end of its log:
//!
//! ```text
//! verification time 35 usec
//! stack depth 16+0+32
//! processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0
//! ```
//!
//! The first two lines appear only with `BPF_LOG_STATS`. Newer kernels may
//! drop or add counters, so every counter after "processed" is optional.

/// The verifier's statistics for one load.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VerifierStats {
    /// Instructions the verifier processed (counting every path).
    pub insns_processed: u64,
    /// The complexity limit in force (1000000 for privileged loads).
    pub insn_limit: u64,
    pub max_states_per_insn: Option<u64>,
    pub total_states: Option<u64>,
    pub peak_states: Option<u64>,
    pub mark_read: Option<u64>,
    /// Verification time in microseconds (with BPF_LOG_STATS).
    pub verification_time_usec: Option<u64>,
    /// Each function's stack depth in bytes, main program first (with BPF_LOG_STATS).
    pub stack_depths: Vec<u32>,
}

impl VerifierStats {
    /// Finds the statistics in a verifier log; None when there is no
    /// "processed N insns" line (a log cut short, or a log level of 0).
    pub fn parse(log: &str) -> Option<VerifierStats> {
        let mut stats = None::<VerifierStats>;
        let mut time = None;
        let mut depths = Vec::new();
        for line in log.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("verification time ") {
                time = rest
                    .strip_suffix(" usec")
                    .and_then(|n| n.trim().parse().ok());
            } else if let Some(rest) = line.strip_prefix("stack depth ") {
                depths = rest
                    .split('+')
                    .map(|d| d.trim().parse::<u32>())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap_or_default();
            } else if line.starts_with("processed ")
                && let Some(parsed) = parse_processed(line)
            {
                // Keep the last one: a log can hold an earlier program's text.
                stats = Some(parsed);
            }
        }
        let mut stats = stats?;
        stats.verification_time_usec = time;
        stats.stack_depths = depths;
        Some(stats)
    }

    /// Total stack of all frames (an upper bound on what a call chain uses).
    pub fn total_stack_depth(&self) -> u32 {
        self.stack_depths.iter().sum()
    }
}

/// "processed 12 insns (limit 1000000) max_states_per_insn 0 total_states 1 ..."
fn parse_processed(line: &str) -> Option<VerifierStats> {
    let words: Vec<&str> = line.split_whitespace().collect();
    // words: processed N insns (limit L) key value key value...
    if words.len() < 3 || words[0] != "processed" || words[2] != "insns" {
        return None;
    }
    let mut stats = VerifierStats {
        insns_processed: words[1].parse().ok()?,
        ..VerifierStats::default()
    };
    let mut i = 3;
    if words.get(i) == Some(&"(limit") {
        stats.insn_limit = words.get(i + 1)?.trim_end_matches(')').parse().ok()?;
        i += 2;
    }
    while i + 1 < words.len() {
        let value = words[i + 1].parse::<u64>().ok();
        match words[i] {
            "max_states_per_insn" => stats.max_states_per_insn = value,
            "total_states" => stats.total_states = value,
            "peak_states" => stats.peak_states = value,
            "mark_read" => stats.mark_read = value,
            _ => {}
        }
        i += 2;
    }
    Some(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_statistics() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n0: (b7) r0 = 2   ; R0_w=2\n1: (95) exit\n\
                   verification time 35 usec\nstack depth 16+0+32\n\
                   processed 12 insns (limit 1000000) max_states_per_insn 1 total_states 3 peak_states 3 mark_read 2\n";
        let s = VerifierStats::parse(log).unwrap();
        assert_eq!(s.insns_processed, 12);
        assert_eq!(s.insn_limit, 1_000_000);
        assert_eq!(s.max_states_per_insn, Some(1));
        assert_eq!(s.total_states, Some(3));
        assert_eq!(s.peak_states, Some(3));
        assert_eq!(s.mark_read, Some(2));
        assert_eq!(s.verification_time_usec, Some(35));
        assert_eq!(s.stack_depths, vec![16, 0, 32]);
        assert_eq!(s.total_stack_depth(), 48);
    }

    #[test]
    fn counters_are_optional() {
        let s = VerifierStats::parse("processed 2 insns (limit 1000000) max_states_per_insn 0\n")
            .unwrap();
        assert_eq!(s.insns_processed, 2);
        assert_eq!(s.max_states_per_insn, Some(0));
        assert_eq!(s.mark_read, None);
        assert_eq!(s.verification_time_usec, None);
        assert!(s.stack_depths.is_empty());
    }

    #[test]
    fn no_statistics_line() {
        assert_eq!(VerifierStats::parse(""), None);
        assert_eq!(
            VerifierStats::parse("0: (b7) r0 = 0\nprocessed lots\n"),
            None
        );
    }
}
