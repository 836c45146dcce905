//! Redaction (pure part): snap length, payload zeroing, comm and host
//! names, packet copies made by helpers; the result is a valid trace.
//! Replay of redacted traces is tested in tui/tests/bugreport.rs.

mod edit_common;

use bpfrr_trace::catalog::helper_by_name;
use bpfrr_trace::edit::{RedactOptions, RedactStats, redact_invocation, write_redacted};
use bpfrr_trace::trace::*;
use edit_common::*;

const XDP: u32 = 6;
const TRACEPOINT: u32 = 5;
const CGROUP_SKB: u32 = 8;

fn id(name: &str) -> u32 {
    helper_by_name(name).unwrap().id
}

fn packet_inv(program: u32, frame: Vec<u8>) -> Invocation {
    Invocation {
        program,
        ctx: vec![1; 24],
        final_packet: Some(frame.clone()),
        packet: Some(frame),
        ..Invocation::default()
    }
}

#[test]
fn snaplen_cuts_packets_and_keeps_their_real_length() {
    let frame = udp_frame(b"hello, this is the payload");
    let len = frame.len();
    let mut inv = packet_inv(0, frame.clone());
    let opts = RedactOptions {
        snaplen: Some(40),
        ..RedactOptions::default()
    };
    let mut stats = RedactStats::default();
    assert!(redact_invocation(&mut inv, XDP, &opts, &mut stats));
    assert_eq!(inv.packet.as_deref(), Some(&frame[..40]));
    assert_eq!(inv.final_packet.as_deref(), Some(&frame[..40]));
    assert_eq!(inv.packet_truncated_from, Some(len as u32));
    assert_eq!(inv.ctx, vec![1; 24], "the context stays");
    assert!(!inv.partial, "not partial: the end state is still compared");
    assert_eq!(
        (stats.packets_truncated, stats.packet_bytes_cut),
        (1, len as u64 - 40)
    );
    assert_eq!(stats.final_packets_truncated, 1);

    // An earlier cut (by the recorder) keeps the real length it noted.
    let mut inv = packet_inv(0, frame[..50].to_vec());
    inv.packet_truncated_from = Some(1500);
    redact_invocation(&mut inv, XDP, &opts, &mut stats);
    assert_eq!(inv.packet_truncated_from, Some(1500));

    // A snap length beyond the packet changes nothing.
    let mut inv = packet_inv(0, frame.clone());
    let mut stats = RedactStats::default();
    let wide = RedactOptions {
        snaplen: Some(1000),
        ..RedactOptions::default()
    };
    assert!(!redact_invocation(&mut inv, XDP, &wide, &mut stats));
    assert_eq!(inv.packet_truncated_from, None);
    assert_eq!((stats.invocations, stats.changed), (1, 0));
}

#[test]
fn zero_payload_keeps_the_headers_of_ethernet_and_raw_ip_packets() {
    let payload = b"secret payload bytes";
    let frame = udp_frame(payload);
    let opts = RedactOptions {
        zero_payload: true,
        ..RedactOptions::default()
    };
    let mut stats = RedactStats::default();
    let mut inv = packet_inv(0, frame.clone());
    redact_invocation(&mut inv, XDP, &opts, &mut stats);
    let p = inv.packet.unwrap();
    assert_eq!(p.len(), frame.len(), "zeroing does not cut");
    assert_eq!(&p[..42], &frame[..42], "Ethernet + IPv4 + UDP headers stay");
    assert!(p[42..].iter().all(|&b| b == 0));
    assert!(inv.final_packet.unwrap()[42..].iter().all(|&b| b == 0));
    assert_eq!(stats.payload_bytes_zeroed, 2 * payload.len() as u64);

    // cgroup skb packets start at the IP header.
    let mut inv = packet_inv(0, frame[14..].to_vec());
    redact_invocation(&mut inv, CGROUP_SKB, &opts, &mut stats);
    let p = inv.packet.unwrap();
    assert_eq!(&p[..28], &frame[14..42]);
    assert!(p[28..].iter().all(|&b| b == 0));
}

#[test]
fn comm_outputs_and_packet_copies_are_redacted() {
    let frame = udp_frame(b"PAYLOAD!");
    let mut inv = packet_inv(0, frame.clone());
    inv.events = vec![
        helper(
            2,
            id("get_current_comm"),
            vec![(1, b"curl\0\0\0\0".to_vec())],
        ),
        // bpf_skb_load_bytes of the UDP header and 4 payload bytes.
        helper(5, id("skb_load_bytes"), vec![(3, frame[34..46].to_vec())]),
        // A copy whose bytes are not in the packet is kept and counted.
        helper(
            5,
            id("skb_load_bytes"),
            vec![(3, vec![0xde, 0xad, 0xbe, 0xef])],
        ),
    ];
    let opts = RedactOptions {
        zero_payload: true,
        drop_comm: true,
        ..RedactOptions::default()
    };
    let mut stats = RedactStats::default();
    redact_invocation(&mut inv, XDP, &opts, &mut stats);
    assert_eq!(inv.events[0].outputs[0].bytes, vec![0; 8]);
    let copy = &inv.events[1].outputs[0].bytes;
    assert_eq!(&copy[..8], &frame[34..42], "the UDP header bytes stay");
    assert_eq!(&copy[8..], &[0; 4], "the payload bytes go");
    assert_eq!(inv.events[2].outputs[0].bytes, vec![0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(stats.comm_outputs_zeroed, 1);
    assert_eq!(stats.packet_copies_redacted, 1);
    assert_eq!(stats.packet_copies_kept, 1);
    let report = stats.to_string();
    assert!(
        report.contains("zeroed 1 bpf_get_current_comm outputs"),
        "{report}"
    );
    assert!(
        report.contains("kept 1 helper outputs copying packet bytes"),
        "{report}"
    );
}

#[test]
fn a_redacted_trace_is_valid_and_says_what_was_removed() {
    let frame = udp_frame(&[7u8; 100]);
    let programs = vec![
        program(0, "xdp", XDP, vec![0]),
        program(1, "tp", TRACEPOINT, vec![]),
    ];
    let mut tp = Invocation {
        program: 1,
        ctx: vec![3; 16],
        events: vec![helper(
            2,
            id("get_current_comm"),
            vec![(1, b"sshd\0\0\0\0".to_vec())],
        )],
        ..Invocation::default()
    };
    tp.seq = 1;
    let invocations = vec![
        packet_inv(0, frame.clone()),
        tp,
        packet_inv(0, frame[..30].to_vec()),
    ];
    let t = write(
        &scratch("orig"),
        meta(),
        programs,
        vec![map(0, "a", 2, 1)],
        invocations,
        &[(0, 3)],
    );
    let out = scratch("safe");
    let opts = RedactOptions {
        snaplen: Some(64),
        zero_payload: true,
        drop_comm: true,
    };
    let stats = write_redacted(&t, &opts, &out).unwrap();
    let r = reopen(&out);
    assert_eq!(r.invocation_count(), 3);
    assert_eq!(r.meta().hostname, None);
    assert!(r.meta().command.is_empty());
    assert!(
        r.meta()
            .notes
            .contains("redacted by bpfrr: packets cut to 64 bytes"),
        "{}",
        r.meta().notes
    );
    assert_eq!(r.lost(), t.lost());
    assert_eq!(r.maps(), t.maps());
    assert_eq!(r.programs(), t.programs());
    let invs = all_invocations(&r);
    assert_eq!(invs[0].packet.as_ref().unwrap().len(), 64);
    assert_eq!(invs[1].events[0].outputs[0].bytes, vec![0; 8]);
    assert_eq!(
        invs[2].packet.as_deref(),
        Some(&frame[..30]),
        "a short packet is only headers"
    );
    assert!(stats.hostname_dropped && stats.command_dropped);
    assert_eq!((stats.invocations, stats.changed), (3, 2));
    let text = stats.to_string();
    assert!(text.contains("dropped the host name"), "{text}");
    assert!(text.contains("2 of 3 invocations changed"), "{text}");
}
