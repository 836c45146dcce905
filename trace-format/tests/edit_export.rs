//! Export of a trace's packets as pcap, read back with the pcap reader.

mod edit_common;

use bpfrr_trace::edit::{PacketSource, export_pcap};
use bpfrr_trace::pcap::{self, LINKTYPE_ETHERNET, LINKTYPE_RAW};
use bpfrr_trace::trace::*;
use edit_common::*;

const XDP: u32 = 6;
const TRACEPOINT: u32 = 5;
const CGROUP_SKB: u32 = 8;

fn inv(program: u32, time_ns: u64, packet: Option<Vec<u8>>) -> Invocation {
    Invocation {
        program,
        time_ns,
        final_packet: packet.as_ref().map(|p| {
            let mut f = p.clone();
            f[0] ^= 0xff;
            f
        }),
        packet,
        ..Invocation::default()
    }
}

fn export(t: &Trace, source: PacketSource) -> (bpfrr_trace::edit::ExportStats, pcap::PcapFile) {
    let mut out = Vec::new();
    let stats = export_pcap(t, source, &mut out, "test.pcap").unwrap();
    (stats, pcap::read(&out).expect("the export reads back"))
}

#[test]
fn xdp_packets_become_ethernet_records_with_real_time_gaps() {
    let a = udp_frame(b"first");
    let b = udp_frame(b"second one");
    let mut cut = inv(0, 5_000_000, Some(b.clone()));
    cut.packet_truncated_from = Some(1500);
    let t = write(
        &scratch("x"),
        meta(),
        vec![
            program(0, "xdp", XDP, vec![]),
            program(1, "tp", TRACEPOINT, vec![]),
        ],
        vec![],
        vec![
            inv(0, 2_000_000, Some(a.clone())),
            inv(1, 3_000_000, None),
            cut,
        ],
        &[],
    );
    let (stats, f) = export(&t, PacketSource::Recorded);
    assert_eq!((stats.packets, stats.skipped, stats.truncated), (2, 1, 1));
    assert_eq!(f.linktype, LINKTYPE_ETHERNET);
    assert!(f.nanosecond);
    let start = meta().start_time_ns;
    assert_eq!(f.records[0].ts_ns, start);
    assert_eq!(
        f.records[1].ts_ns,
        start + 3_000_000,
        "the gap between the invocations"
    );
    assert_eq!(f.records[0].data, a);
    assert_eq!(f.records[0].orig_len, a.len() as u32);
    assert_eq!(f.records[1].data, b);
    assert_eq!(
        f.records[1].orig_len, 1500,
        "the real length of a cut packet"
    );

    let (_, f) = export(&t, PacketSource::Final);
    assert_eq!(
        f.records[0].data[0],
        a[0] ^ 0xff,
        "--final: the packet as the program left it"
    );
    assert_eq!(&f.records[0].data[1..], &a[1..]);
}

#[test]
fn ip_packets_are_raw_ip_alone_and_get_an_ethernet_header_when_mixed() {
    let frame = udp_frame(b"x");
    let ip = frame[14..].to_vec();
    let programs = vec![
        program(0, "cg", CGROUP_SKB, vec![]),
        program(1, "xdp", XDP, vec![]),
    ];
    let only_ip = write(
        &scratch("ip"),
        TraceMeta::default(),
        programs.clone(),
        vec![],
        vec![inv(0, 77, Some(ip.clone()))],
        &[],
    );
    let (stats, f) = export(&only_ip, PacketSource::Recorded);
    assert_eq!((f.linktype, stats.linktype), (LINKTYPE_RAW, LINKTYPE_RAW));
    assert_eq!(f.records[0].data, ip);
    assert_eq!(
        f.records[0].ts_ns, 77,
        "no start time: the kernel time stays"
    );

    let mixed = write(
        &scratch("mixed"),
        meta(),
        programs,
        vec![],
        vec![inv(0, 1, Some(ip.clone())), inv(1, 2, Some(frame.clone()))],
        &[],
    );
    let (stats, f) = export(&mixed, PacketSource::Recorded);
    assert_eq!(f.linktype, LINKTYPE_ETHERNET);
    assert_eq!(stats.synthetic_ethernet, 1);
    assert_eq!(&f.records[0].data[12..14], &[0x08, 0x00]);
    assert_eq!(&f.records[0].data[14..], &ip[..]);
    assert_eq!(f.records[0].orig_len, ip.len() as u32 + 14);
    assert_eq!(f.records[1].data, frame);
}

#[test]
fn a_trace_without_packets_gives_an_empty_capture() {
    let t = write(
        &scratch("none"),
        meta(),
        vec![program(0, "tp", TRACEPOINT, vec![])],
        vec![],
        vec![inv(0, 1, None)],
        &[],
    );
    let (stats, f) = export(&t, PacketSource::Recorded);
    assert_eq!((stats.packets, stats.skipped), (0, 1));
    assert!(f.records.is_empty());
    assert_eq!(f.linktype, LINKTYPE_ETHERNET);
}
