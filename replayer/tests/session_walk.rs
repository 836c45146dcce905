//! Time travel is exact: stepping forward and back, jumping with goto
//! across checkpoints, and re-executing after stepping back (through
//! helper calls answered by the environment memo) always reproduce every
//! register and memory byte.

mod session_support;

use bpfrr_replayer::session::{CHECKPOINT_INTERVAL, EndKind, StopReason};
use session_support::*;

#[test]
fn a_thousand_steps_forward_and_back_restore_every_register_and_byte() {
    // 1000 steps of the counting loop: spills, fills, helper calls, map writes.
    let mut s = model_session(&counting_loop(200), &[0u8; 64]);
    let mut states = vec![snapshot(&s)];
    for i in 0..1000 {
        let stop = s.step();
        assert_eq!(stop.reason, StopReason::Done, "step {i}");
        assert_eq!(s.position(), i + 1);
        states.push(snapshot(&s));
    }
    // The map value grew: the loop really ran its helper calls.
    assert_ne!(states[0], states[1000]);
    for i in (0..1000).rev() {
        let stop = s.reverse_step();
        assert_eq!(stop.reason, StopReason::Done);
        assert_eq!(s.position(), i);
        assert!(
            states[i as usize] == snapshot(&s),
            "state differs at position {i} going back"
        );
    }
    assert_eq!(s.reverse_step().reason, StopReason::Start);
    // Forward again replays the environment's answers: the same states.
    for i in 1..=1000u64 {
        s.step();
        assert!(
            states[i as usize] == snapshot(&s),
            "state differs at position {i} going forward again"
        );
    }
}

#[test]
fn goto_anywhere_matches_straight_execution_across_checkpoints() {
    let n = 3000; // about 36000 steps: nine checkpoint intervals
    let mut reference = model_session(&counting_loop(n), &[0u8; 64]);
    let mut states = vec![snapshot(&reference)];
    while !reference.at_end() {
        reference.step();
        states.push(snapshot(&reference));
    }
    let total = reference.position();
    assert!(total > 8 * CHECKPOINT_INTERVAL, "{total} steps");
    assert!(matches!(
        reference.end().map(|e| &e.kind),
        Some(EndKind::Exited(r0)) if *r0 == n as u64
    ));

    let mut s = model_session(&counting_loop(n), &[0u8; 64]);
    // Jump far ahead first (full-speed run through new territory), then
    // around, backwards and forwards, and by single steps across the base.
    let mut x: u64 = 12345;
    let mut targets = vec![total / 2, 5, total, 4096, 4095, 4097, total - 1, 0, 8191];
    for _ in 0..60 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        targets.push((x >> 20) % (total + 1));
    }
    for t in targets {
        let stop = s.goto(t);
        assert_eq!(s.position(), t);
        assert_eq!(stop.position, t);
        assert!(states[t as usize] == snapshot(&s), "goto {t} differs");
        // Step back across whatever the log holds.
        if t > 2 {
            s.reverse_step();
            s.reverse_step();
            assert!(
                states[t as usize - 2] == snapshot(&s),
                "back from {t} differs"
            );
        }
    }
    // goto past the end stops at the end.
    let stop = s.goto(total + 100);
    assert_eq!(s.position(), total);
    assert_eq!(stop.reason, StopReason::Exited { r0: n as u64 });
}

#[test]
fn stepping_back_over_the_start_of_an_interval_rebuilds_its_log() {
    let mut s = model_session(&counting_loop(1000), &[0u8; 64]);
    let t = 3 * CHECKPOINT_INTERVAL + 10;
    let mut reference = model_session(&counting_loop(1000), &[0u8; 64]);
    let mut states = Vec::new();
    for _ in 0..=t {
        states.push(snapshot(&reference));
        reference.step();
    }
    s.goto(t);
    for p in (t - 200..t).rev() {
        s.reverse_step();
        assert!(states[p as usize] == snapshot(&s), "position {p}");
    }
}

#[test]
fn the_sample_firewall_runs_to_its_verdict_and_back_to_the_start() {
    let pkt = hex_file("xdp_fw-tcp23.hex");
    let mut s = xdp_fw_session(&pkt, &[]);
    let start = snapshot(&s);
    let stop = s.continue_();
    assert_eq!(
        stop.reason,
        StopReason::Exited { r0: 1 },
        "XDP_DROP for telnet"
    );
    let end = s.position();
    assert!(end > 50);
    let stop = s.reverse_continue();
    assert_eq!(stop.reason, StopReason::Start);
    assert!(start == snapshot(&s));
    s.goto(end);
    assert!(s.at_end());
}

#[test]
fn a_session_needs_a_started_machine() {
    use bpfrr_replayer::env::{ModelConfig, ModelEnv};
    use bpfrr_replayer::session::{DebugInfo, Session};
    use bpfrr_replayer::vm::Machine;
    let m = Machine::new(program(&counting_loop(1)));
    let e = ModelEnv::new(vec![], ModelConfig::default());
    let err = Session::new(m, e, DebugInfo::default())
        .err()
        .expect("error");
    assert!(err.to_string().contains("Machine::start"), "{err}");
}
