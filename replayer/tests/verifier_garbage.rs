//! The verifier-log parser never panics, whatever it is given: random
//! text, real logs cut at random places, lines shuffled, dropped or
//! duplicated, characters replaced. And the queries on the result
//! (states_at, path_to_error, compact forms) stay panic-free too.

use std::path::PathBuf;

use bpfrr_replayer::verifier::{FrameState, RegState, VerifierLog};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/verifier")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Small real logs with every kind of line (calls, callbacks, pruning,
/// errors).
fn corpus() -> Vec<String> {
    [
        "xdp_fw.xdp_firewall.log",
        "tp_syscalls.count_openat.log",
        "sock_filter.udp_port_filter.log",
        "map_value_null.map_value_null.log",
        "unreleased_reference.unreleased_reference.log",
        "infinite_loop.infinite_loop.log",
    ]
    .iter()
    .map(|n| fixture(n))
    .collect()
}

/// Exercises everything a view would call.
fn use_everything(log: &VerifierLog) {
    let _ = log.path_to_error();
    let _ = log.unvisited();
    for v in log.visits.iter().take(2000) {
        let _ = log.states_at(v.insn).count();
        let st = v.state_after(log.insn_text(v.insn));
        let _ = st.compact();
        for (_, r) in &v.regs {
            let _ = r.compact();
            let _ = r.type_name();
        }
    }
    if let Some(e) = &log.error {
        let _ = e.kind.explain();
        let _ = e.headline();
    }
}

/// Characters the log is made of, and some it never has.
fn log_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => prop::sample::select(
            "0123456789abcdefxRPrmwfp=()[];:,.-+_ ?@#\n".chars().collect::<Vec<_>>()
        ),
        1 => any::<char>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_text(chars in prop::collection::vec(log_char(), 0..400)) {
        let text: String = chars.into_iter().collect();
        use_everything(&VerifierLog::parse(&text));
        let _ = RegState::parse(&text);
        let _ = FrameState::parse(&text);
    }

    #[test]
    fn random_log_like_lines(lines in prop::collection::vec(prop_oneof![
        Just("0: R1=ctx() R10=fp0".to_string()),
        Just("from 4 to 7: R1=pkt(r=0) R10=fp0".to_string()),
        Just("from 9 to 3: safe".to_string()),
        Just("7: safe".to_string()),
        Just("caller:".to_string()),
        Just("callee:".to_string()),
        Just(" frame1: R1=ctx() R2=fp[0]-24 R10=fp0".to_string()),
        Just("returning from callee:".to_string()),
        Just("to caller at 10:".to_string()),
        Just("frame 0: propagating r1,fp-8".to_string()),
        Just("; text @ f.c:3".to_string()),
        Just("R0 !read_ok".to_string()),
        (0usize..40, 0usize..40).prop_map(|(i, t)| format!("{i}: (2d) if r3 > r2 goto pc+{t}")),
        (0usize..40, -40i64..40).prop_map(|(i, t)| format!("{i}: (05) goto pc{t:+}")),
        (0usize..40).prop_map(|i| format!("{i}: (85) call bpf_map_lookup_elem#1      ; R0=map_value_or_null(id=1,map=m,ks=4,vs=8)")),
        (0usize..40).prop_map(|i| format!("{i}: (95) exit")),
        (0usize..40).prop_map(|i| format!("{i}: R0=scalar(smin=0,var_off=(0x0; 0xff)) fp-8=mmmm0")),
        "[ -~]{0,40}",
    ], 0..60)) {
        use_everything(&VerifierLog::parse(&lines.join("\n")));
    }
}

// Real logs are larger: fewer cases keep the debug-build test short.
proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn real_logs_cut_and_mutated(
        which in 0usize..6,
        cut_start in 0usize..100_000,
        cut_len in 0usize..100_000,
        edits in prop::collection::vec((0usize..100_000, log_char()), 0..20),
    ) {
        let logs = corpus();
        let text = &logs[which % logs.len()];
        let mut chars: Vec<char> = text.chars().collect();
        let start = cut_start % (chars.len() + 1);
        let end = (start + cut_len).min(chars.len());
        chars.drain(start..end);
        for (at, c) in edits {
            if !chars.is_empty() {
                let i = at % chars.len();
                chars[i] = c;
            }
        }
        let mutated: String = chars.into_iter().collect();
        use_everything(&VerifierLog::parse(&mutated));
    }

    #[test]
    fn real_logs_with_lines_shuffled(which in 0usize..6, seed in any::<u64>(), dup in 0usize..50) {
        let logs = corpus();
        let mut lines: Vec<&str> = logs[which % logs.len()].lines().collect();
        // A cheap deterministic shuffle.
        let mut s = seed | 1;
        for i in (1..lines.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lines.swap(i, (s % (i as u64 + 1)) as usize);
        }
        if !lines.is_empty() {
            let l = lines[dup % lines.len()];
            lines.insert(0, l);
        }
        use_everything(&VerifierLog::parse(&lines.join("\n")));
    }
}
