//! Sessions over the committed sample recordings (samples/traces/): every
//! invocation runs to its recorded verdict with no divergence, walks back
//! exactly, stops at helper breakpoints, and two invocations diff.

mod session_support;

use bpfrr_replayer::replay::Replayer;
use bpfrr_replayer::session::{DiffReport, EndKind, Session, StopReason, diff};
use bpfrr_trace::trace::Trace;
use session_support::samples_dir;

fn trace(name: &str) -> Trace {
    Trace::open(samples_dir().join("traces").join(name)).expect("sample trace")
}

#[test]
fn every_recorded_invocation_replays_to_its_verdict_and_back() {
    for name in [
        "xdp_fw.bpfrr",
        "tc_rewrite.bpfrr",
        "sock_filter.bpfrr",
        "cgroup_skb.bpfrr",
    ] {
        let t = trace(name);
        let mut r = Replayer::new(&t);
        for i in 0..t.invocation_count() {
            let recorded = t.invocation_owned(i).unwrap();
            let mut s = Session::for_invocation(&mut r, i).unwrap();
            let start = s.machine().state().clone();
            let stop = s.continue_();
            assert_eq!(
                stop.reason,
                StopReason::Exited {
                    r0: recorded.retval
                },
                "{name} invocation {i}"
            );
            let end = s.machine().state().clone();
            assert_eq!(s.reverse_continue().reason, StopReason::Start);
            assert!(
                start == *s.machine().state(),
                "{name} {i}: back at the start"
            );
            s.goto(u64::MAX);
            assert!(end == *s.machine().state(), "{name} {i}: forward again");
            s.finish_into(&mut r, i);
        }
    }
}

#[test]
fn breakpoints_by_helper_and_function_on_a_recording() {
    let t = trace("xdp_fw.bpfrr");
    let mut r = Replayer::new(&t);
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    assert!(s.info().btf.is_some());
    let f = s.add_breakpoint("parse_packet").unwrap();
    assert_eq!(s.continue_().reason, StopReason::Breakpoint { id: f });
    assert_eq!(s.frames().len(), 2);
    let h = s.add_breakpoint("bpf_map_lookup_elem").unwrap();
    assert_eq!(s.continue_().reason, StopReason::Breakpoint { id: h });
    let r1 = s.describe_value(s.regs()[1]);
    assert!(r1.text().unwrap_or("").starts_with("map("), "{r1:?}");
    assert!(s.print("ctx->data").unwrap().starts_with("pkt ("));
}

#[test]
fn a_contradicting_recording_is_a_divergence_stop() {
    let t = trace("xdp_fw.bpfrr");
    let mut r = Replayer::new(&t);
    let recorded = t.invocation_owned(0).unwrap();
    let mut s = Session::for_invocation(&mut r, 0).unwrap();
    // Pretend the recording said something else at the exit.
    s.expect_exit(bpfrr_replayer::session::ExpectedExit {
        r0: recorded.retval + 1,
        packet: None,
        packet_is_prefix: false,
    });
    let stop = s.continue_();
    let StopReason::Divergence { message } = stop.reason else {
        panic!("{stop:?}")
    };
    assert!(message.contains("recorded run returned"), "{message}");
    assert!(matches!(s.end().unwrap().kind, EndKind::Divergence { .. }));
}

#[test]
fn two_recorded_invocations_diff() {
    let t = trace("xdp_fw.bpfrr");
    let n = t.invocation_count();
    let verdicts: Vec<u64> = (0..n)
        .map(|i| t.invocation_owned(i).unwrap().retval)
        .collect();
    let (a, b) = (0..n)
        .flat_map(|a| (0..n).map(move |b| (a, b)))
        .find(|&(a, b)| verdicts[a as usize] != verdicts[b as usize])
        .expect("two invocations with different verdicts");
    let mut ra = Replayer::new(&t);
    let mut rb = Replayer::new(&t);
    let mut sa = Session::for_invocation(&mut ra, a).unwrap();
    let mut sb = Session::for_invocation(&mut rb, b).unwrap();
    let report = diff(&mut sa, &mut sb);
    assert!(matches!(report, DiffReport::Split { .. }), "{report:?}");
}
