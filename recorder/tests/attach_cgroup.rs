//! Live attachment of the cgroup_skb sample on a cgroup v2 directory the
//! test creates: a child process moves itself into the cgroup, enters a
//! network namespace the test creates and sends UDP datagrams on its
//! loopback; the program's per-protocol counters must show exactly them.
#![cfg(target_os = "linux")]

mod common;
mod netns;

use std::process::Command;

use bpfrr_recorder::attach::{AttachError, AttachSpec, CgroupTarget};
use netns::samples::{attach_program, load, map, open_sample, per_cpu_u64_sum};
use netns::{NetNs, TempCgroup};

const IPPROTO_UDP: u32 = 17;

/// Runs `count` UDP sends to 127.0.0.1:9 from a shell that first joins
/// `cgroup`, then enters `ns` (bash's /dev/udp: one datagram per send).
fn send_udp_from_cgroup(cgroup: &TempCgroup, ns: &NetNs, count: u32) {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec ip netns exec {} bash -c 'for i in $(seq {count}); do echo hi > /dev/udp/127.0.0.1/9 || true; done'",
        cgroup.path().display(),
        ns.name()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cgroup_skb_counts_the_cgroups_egress_packets() {
    if !common::kernel_tests_enabled("cgroup_skb_counts_the_cgroups_egress_packets") {
        return;
    }
    let ns = NetNs::create("cg");
    let cgroup = TempCgroup::create("cgskb");
    let mut obj = open_sample("cgroup_skb");
    let prog = load(&mut obj, "egress_accounting");
    let stats = map(&obj, "proto_stats");

    let spec = AttachSpec::Cgroup(CgroupTarget::parse(cgroup.path().to_str().unwrap()).unwrap());
    let link = spec
        .attach(attach_program(&prog))
        .expect("attach cgroup_skb");
    assert!(
        link.description().starts_with("cgroup_skb egress on "),
        "{link:?}"
    );

    send_udp_from_cgroup(&cgroup, &ns, 3);
    assert_eq!(
        per_cpu_u64_sum(stats, IPPROTO_UDP, 0),
        3,
        "proto_stats[UDP].packets after 3 datagrams"
    );
    // Each is 20 (IP) + 8 (UDP) + 3 ("hi\n") bytes.
    assert_eq!(per_cpu_u64_sum(stats, IPPROTO_UDP, 8), 3 * 31);

    common::drop_and_wait_until_released(link.id(), link);
    send_udp_from_cgroup(&cgroup, &ns, 2);
    assert_eq!(
        per_cpu_u64_sum(stats, IPPROTO_UDP, 0),
        3,
        "counted after the link was dropped"
    );
}

#[test]
fn cgroup_targets_that_are_not_cgroups_are_refused() {
    if !common::kernel_tests_enabled("cgroup_targets_that_are_not_cgroups_are_refused") {
        return;
    }
    let mut obj = open_sample("cgroup_skb");
    let prog = load(&mut obj, "egress_accounting");
    let tmp = std::env::temp_dir();
    let spec = AttachSpec::Cgroup(CgroupTarget::parse(tmp.to_str().unwrap()).unwrap());
    let e = spec.attach(attach_program(&prog)).unwrap_err();
    assert!(matches!(e, AttachError::NotFound(_)), "{e}");
    assert!(
        e.to_string().contains("is not a cgroup v2 directory"),
        "{e}"
    );
}
