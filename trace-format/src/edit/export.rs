//! The packets of a trace as a classic pcap file, for Wireshark.
//!
//! One record per invocation that has a packet (recorded at entry, or with
//! [`PacketSource::Final`] as the program left it), in trace order. Link
//! type: `LINKTYPE_ETHERNET` when the packets start with an Ethernet header
//! (XDP, TC), `LINKTYPE_RAW` when they all start at the IP header (socket
//! filters, cgroup skb). A trace holding both kinds gets Ethernet, and its
//! IP packets a synthetic Ethernet header (zero addresses, the EtherType of
//! their IP version), counted in [`ExportStats::synthetic_ethernet`].
//!
//! Timestamps: invocations carry `bpf_ktime_get_ns` (time since boot); the
//! pcap gets the recording's start time (Unix) plus each invocation's
//! distance from the first one, so gaps between packets are the real ones.
//! A trace without a start time keeps the raw kernel times.

use std::io::Write;

use super::EditError;
use super::headers::LinkLayer;
use crate::pcap::{LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapRecord, PcapWriter};
use crate::trace::{ArchivedInvocation, Trace};

/// Which packet of each invocation to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PacketSource {
    /// The packet the program was called with.
    #[default]
    Recorded,
    /// The packet as the program left it.
    Final,
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Packets written.
    pub packets: u64,
    /// Invocations without the packet asked for (not packet programs).
    pub skipped: u64,
    pub linktype: u32,
    /// IP packets given a synthetic Ethernet header (mixed traces).
    pub synthetic_ethernet: u64,
    /// Packets that were cut to a snap length when recorded.
    pub truncated: u64,
}

fn packet_of(inv: &ArchivedInvocation, source: PacketSource) -> Option<&[u8]> {
    let p = match source {
        PacketSource::Recorded => inv.packet.as_ref(),
        PacketSource::Final => inv.final_packet.as_ref(),
    }?;
    Some(&p[..])
}

/// Writes the packets of `trace` to `out` as a pcap file. `out_name`
/// names the output in errors.
pub fn export_pcap(
    trace: &Trace,
    source: PacketSource,
    out: impl Write,
    out_name: &str,
) -> Result<ExportStats, EditError> {
    // First pass: link layers, largest packet, first time.
    let (mut ethernet, mut ip, mut snaplen, mut first_time) = (false, false, 0usize, None);
    for inv in trace.iter_invocations() {
        let inv = inv?;
        let Some(p) = packet_of(inv, source) else {
            continue;
        };
        let prog_type = trace.programs()[inv.program.to_native() as usize].prog_type;
        match LinkLayer::of(prog_type, p) {
            Some(LinkLayer::Ip) => ip = true,
            _ => ethernet = true,
        }
        snaplen = snaplen.max(p.len());
        let t = inv.time_ns.to_native();
        first_time = Some(first_time.map_or(t, |f: u64| f.min(t)));
    }
    let linktype = if ip && !ethernet {
        LINKTYPE_RAW
    } else {
        LINKTYPE_ETHERNET
    };
    let io = |e: std::io::Error| EditError::Io {
        path: out_name.to_string(),
        message: e.to_string(),
    };
    let snaplen = u32::try_from(snaplen + 14).unwrap_or(u32::MAX).max(65535);
    let mut w = PcapWriter::new(out, linktype, snaplen).map_err(io)?;
    let mut stats = ExportStats {
        linktype,
        ..ExportStats::default()
    };
    let start = trace.meta().start_time_ns;
    for inv in trace.iter_invocations() {
        let inv = inv?;
        let Some(p) = packet_of(inv, source) else {
            stats.skipped += 1;
            continue;
        };
        let prog_type = trace.programs()[inv.program.to_native() as usize].prog_type;
        let mut data = Vec::with_capacity(p.len() + 14);
        let mut extra = 0u32;
        if linktype == LINKTYPE_ETHERNET && LinkLayer::of(prog_type, p) == Some(LinkLayer::Ip) {
            let ethertype: u16 = if p[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
            data.extend([0u8; 12]);
            data.extend(ethertype.to_be_bytes());
            stats.synthetic_ethernet += 1;
            extra = 14;
        }
        data.extend_from_slice(p);
        // The wire length: the recorded real length, shifted by what the
        // program added or removed for a final packet.
        let recorded_len = inv.packet.as_ref().map_or(p.len(), |r| r.len());
        let orig_len = match inv.packet_truncated_from.as_ref().map(|n| n.to_native()) {
            Some(real) => {
                stats.truncated += 1;
                (real as usize + p.len()).saturating_sub(recorded_len)
            }
            None => p.len(),
        };
        let t = inv.time_ns.to_native();
        let ts_ns = if start == 0 {
            t
        } else {
            start.saturating_add(t.saturating_sub(first_time.unwrap_or(t)))
        };
        let record = PcapRecord {
            ts_ns,
            orig_len: u32::try_from(orig_len)
                .unwrap_or(u32::MAX)
                .saturating_add(extra),
            data,
        };
        w.write(&record).map_err(io)?;
        stats.packets += 1;
    }
    w.finish().map_err(io)?;
    Ok(stats)
}
