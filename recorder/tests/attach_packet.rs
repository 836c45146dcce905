//! Live attachment of packet programs, on the real kernel, inside network
//! namespaces the tests create: the XDP firewall sample on a veth in
//! generic and native mode, the TC sample on ingress and egress through tcx
//! links. Frames are injected with AF_PACKET inside the namespace; the
//! programs' own map counters prove they ran on exactly those frames, and
//! stop moving once the link is dropped.
#![cfg(target_os = "linux")]

mod common;
mod netns;

use std::os::fd::AsRawFd;

use bpfrr_recorder::attach::{AttachError, AttachSpec, TcTarget, XdpMode, XdpTarget};
use netns::samples::{attach_program, global_u64, load, map, open_sample, per_cpu_u64_sum};
use netns::{NetNs, arp_frame, send_frames, tcp_syn_frame, udp_frame, wait_for};

/// `enum fw_rule` of xdp_fw.bpf.c.
const RULE_PASS: u32 = 0;
const RULE_BLOCKED_PORT: u32 = 3;
const RULE_NON_IP: u32 = 5;

fn xdp_firewall_counts_injected_frames(mode: XdpMode) {
    let ns = NetNs::create("xdp");
    ns.veth_pair("va", "vb");
    let mut obj = open_sample("xdp_fw");
    let prog = load(&mut obj, "xdp_firewall");
    let stats = map(&obj, "rule_stats");

    let spec = AttachSpec::Xdp(XdpTarget {
        iface: "vb".into(),
        mode,
    });
    let link = ns.run(|| spec.attach(attach_program(&prog)).expect("attach XDP"));
    assert!(link.id() > 0);
    assert!(link.description().contains("vb"), "{link:?}");

    // Frames leave va and arrive on vb, where the program runs.
    let frames = vec![
        tcp_syn_frame(40000, 23), // telnet: blocked
        tcp_syn_frame(40001, 23),
        tcp_syn_frame(40002, 23),
        udp_frame(5000, 53, b"query"),
        udp_frame(5001, 53, b"query"),
        arp_frame(),
    ];
    ns.run(|| send_frames("va", &frames));
    let counts = wait_for(5, || {
        let c = (
            per_cpu_u64_sum(stats, RULE_BLOCKED_PORT, 0),
            per_cpu_u64_sum(stats, RULE_PASS, 0),
            per_cpu_u64_sum(stats, RULE_NON_IP, 0),
        );
        (c == (3, 2, 1)).then_some(c)
    });
    assert_eq!(
        counts,
        Some((3, 2, 1)),
        "rule_stats (blocked port, pass, non-IP) after 3 telnet SYNs, 2 UDP, 1 ARP ({mode:?})"
    );
    // Bytes are counted too: 3 SYN frames of 54 bytes.
    assert_eq!(per_cpu_u64_sum(stats, RULE_BLOCKED_PORT, 8), 3 * 54);

    // Dropping the link detaches the program: more frames, no more counts.
    common::drop_and_wait_until_released(link.id(), link);
    ns.run(|| send_frames("va", &[tcp_syn_frame(40003, 23)]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(per_cpu_u64_sum(stats, RULE_BLOCKED_PORT, 0), 3);
}

#[test]
fn xdp_generic_on_veth() {
    if !common::kernel_tests_enabled("xdp_generic_on_veth") {
        return;
    }
    xdp_firewall_counts_injected_frames(XdpMode::Generic);
}

#[test]
fn xdp_native_on_veth() {
    if !common::kernel_tests_enabled("xdp_native_on_veth") {
        return;
    }
    xdp_firewall_counts_injected_frames(XdpMode::Native);
}

#[test]
fn xdp_refuses_a_busy_interface_and_missing_ones() {
    if !common::kernel_tests_enabled("xdp_refuses_a_busy_interface_and_missing_ones") {
        return;
    }
    let ns = NetNs::create("xdpbusy");
    ns.veth_pair("va", "vb");
    let mut obj = open_sample("xdp_fw");
    let prog = load(&mut obj, "xdp_firewall");
    let spec = AttachSpec::Xdp(XdpTarget::parse("vb:generic").unwrap());
    let first = ns.run(|| spec.attach(attach_program(&prog)).unwrap());
    let second = ns.run(|| spec.attach(attach_program(&prog)));
    let e = second.unwrap_err();
    assert!(
        matches!(e, AttachError::Restricted(_))
            && e.to_string().contains("already has an XDP program"),
        "{e}"
    );
    // Free again once the first link is gone (waiting for the kernel: a
    // child forked by a parallel test may hold its fd for a moment).
    common::drop_and_wait_until_released(first.id(), first);
    let again = ns.run(|| spec.attach(attach_program(&prog)));
    assert!(again.is_ok(), "{:?}", again.err());

    let missing = AttachSpec::Xdp(XdpTarget::parse("nosuch0").unwrap());
    let e = ns
        .run(|| missing.attach(attach_program(&prog)))
        .unwrap_err();
    assert!(matches!(e, AttachError::NotFound(_)), "{e}");
}

/// tc_rewrite: tc_mark_dscp marks every IPv4 packet and tail-calls
/// tc_redirect_port (slot 0 of jump_table) for UDP to port 5353, which
/// rewrites the port. Both count in .bss.
fn tc_rewrite_runs_on(direction: &str) {
    let ns = NetNs::create("tc");
    ns.veth_pair("va", "vb");
    let mut obj = open_sample("tc_rewrite");
    let mark = load(&mut obj, "tc_mark_dscp");
    let redirect = load(&mut obj, "tc_redirect_port");
    map(&obj, "jump_table")
        .update(
            &0u32.to_le_bytes(),
            &(redirect.fd.as_raw_fd() as u32).to_le_bytes(),
            0,
        )
        .unwrap();

    // Ingress of vb sees what va sends; egress of va sees it leave.
    let iface = if direction == "ingress" { "vb" } else { "va" };
    let spec = AttachSpec::Tc(TcTarget::parse(&format!("{iface}:{direction}")).unwrap());
    let link = ns.run(|| spec.attach(attach_program(&mark)).expect("attach tcx"));
    assert_eq!(link.description(), format!("TC {direction} on {iface}"));

    let frames = vec![
        udp_frame(1000, 5353, b"mdns"),
        udp_frame(1001, 5353, b"mdns"),
        udp_frame(1002, 53, b"dns"),
        arp_frame(),
    ];
    ns.run(|| send_frames("va", &frames));
    let got = wait_for(5, || {
        let c = (
            global_u64(&obj, &mark, ".bss", "packets_marked"),
            global_u64(&obj, &mark, ".bss", "ports_rewritten"),
        );
        (c == (3, 2)).then_some(c)
    });
    assert_eq!(
        got,
        Some((3, 2)),
        "(packets_marked, ports_rewritten) after 3 IPv4 UDP frames, 2 to port 5353 ({direction})"
    );
    assert_eq!(global_u64(&obj, &mark, ".bss", "tail_call_misses"), 0);

    common::drop_and_wait_until_released(link.id(), link);
    ns.run(|| send_frames("va", &[udp_frame(1003, 5353, b"late")]));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(global_u64(&obj, &mark, ".bss", "packets_marked"), 3);
}

#[test]
fn tc_ingress_on_veth() {
    if !common::kernel_tests_enabled("tc_ingress_on_veth") {
        return;
    }
    tc_rewrite_runs_on("ingress");
}

#[test]
fn tc_egress_on_veth() {
    if !common::kernel_tests_enabled("tc_egress_on_veth") {
        return;
    }
    tc_rewrite_runs_on("egress");
}

#[test]
fn a_program_of_the_wrong_type_is_refused_before_the_kernel() {
    if !common::kernel_tests_enabled("a_program_of_the_wrong_type_is_refused_before_the_kernel") {
        return;
    }
    let mut obj = open_sample("xdp_fw");
    let prog = load(&mut obj, "xdp_firewall");
    let spec = AttachSpec::Tc(TcTarget::parse("lo:ingress").unwrap());
    let e = spec.attach(attach_program(&prog)).unwrap_err().to_string();
    assert!(e.contains("\"xdp_firewall\" is a xdp program"), "{e}");
    assert!(
        e.contains("TC ingress on lo needs a sched_cls or sched_act program"),
        "{e}"
    );
}

#[test]
fn a_live_driver_finishes_when_its_interface_disappears() {
    use bpfrr_recorder::attach::LiveDriver;
    use bpfrr_recorder::record::{Driver, DriverTarget, Step};
    use std::os::fd::AsFd;
    use std::time::Duration;

    if !common::kernel_tests_enabled("a_live_driver_finishes_when_its_interface_disappears") {
        return;
    }
    let ns = NetNs::create("xdpgone");
    ns.veth_pair("va", "vb");
    let mut obj = open_sample("xdp_fw");
    let prog = load(&mut obj, "xdp_firewall");
    let mut driver = LiveDriver::new(AttachSpec::Xdp(XdpTarget::parse("vb:generic").unwrap()));
    let target = DriverTarget {
        prog_fd: prog.fd.as_fd(),
        prog_type: prog.linked.prog_type,
        expected_attach_type: prog.linked.expected_attach_type,
        name: &prog.linked.name,
        section: &prog.linked.section,
        section_attach_point: &prog.linked.attach_point,
    };
    ns.run(|| driver.start(&target)).expect("start");
    assert!(driver.link().unwrap().is_attached());
    assert_eq!(driver.step(Duration::from_millis(1)), Ok(Step::Idle));

    ns.ip(&["link", "del", "vb"]);
    assert!(!driver.link().unwrap().is_attached());
    assert_eq!(driver.step(Duration::from_millis(1)), Ok(Step::Finished));
    assert!(
        driver.notes()[0].contains("disappeared"),
        "{:?}",
        driver.notes()
    );
    driver.stop().unwrap();
    assert!(driver.link().is_none());
}
