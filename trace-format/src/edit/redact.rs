//! Redaction: removing what should not travel with a bug report.
//!
//! - `snaplen`: recorded packets (and final packets) are cut to that many
//!   bytes; `packet_truncated_from` keeps the real length, as when the
//!   recorder itself cuts to a snap length. The context stays as recorded.
//!   (`partial` is not set: it would make the replay stop comparing the end
//!   state, hiding exactly the differences a redaction can cause.)
//! - `zero_payload`: bytes after the L4 header (found by parsing
//!   Ethernet/VLAN/IPv4/IPv6/TCP/UDP/ICMP, see [`super::headers`]) become
//!   zero, in the packet and the final packet.
//! - Both also apply to helper outputs that copy packet bytes
//!   (`bpf_skb_load_bytes`, `_relative`, `bpf_xdp_load_bytes`): the copy is
//!   found in the recorded packet by its content and the bytes that came
//!   from a removed part are zeroed. A copy not found in the packet is kept
//!   and counted.
//! - `drop_comm`: outputs of `bpf_get_current_comm` become zeros, and the
//!   metadata loses the host name and the recording command line.
//!
//! A program that read removed bytes will replay differently: run the
//! fidelity check on the result (`bpfrr redact` does) to see which
//! invocations still replay identically.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

use super::EditError;
use super::headers::{LinkLayer, header_end};
use crate::catalog::helper_by_name;
use crate::trace::{EventKind, Invocation, Trace, TraceMeta, TraceWriter};

/// What to remove.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedactOptions {
    /// Keep at most this many bytes of each packet.
    pub snaplen: Option<u32>,
    /// Zero the bytes after the L4 header.
    pub zero_payload: bool,
    /// Zero `bpf_get_current_comm` outputs; drop host name and command line.
    pub drop_comm: bool,
}

impl RedactOptions {
    /// Nothing would be removed.
    pub fn is_empty(&self) -> bool {
        self.snaplen.is_none() && !self.zero_payload && !self.drop_comm
    }

    /// One line for the trace's notes.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.snaplen {
            parts.push(format!("packets cut to {n} bytes"));
        }
        if self.zero_payload {
            parts.push("payload after the L4 headers zeroed".to_string());
        }
        if self.drop_comm {
            parts.push("comm outputs, host name and command line dropped".to_string());
        }
        format!("redacted by bpfrr: {}", parts.join("; "))
    }
}

/// What a redaction removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactStats {
    /// Invocations seen.
    pub invocations: u64,
    /// Invocations changed in any way.
    pub changed: u64,
    /// Recorded packets cut to the snap length, and the bytes cut.
    pub packets_truncated: u64,
    pub packet_bytes_cut: u64,
    /// Final packets cut to the snap length, and the bytes cut.
    pub final_packets_truncated: u64,
    pub final_bytes_cut: u64,
    /// Packets and final packets whose payload had non-zero bytes, and how
    /// many bytes were zeroed.
    pub payloads_zeroed: u64,
    pub payload_bytes_zeroed: u64,
    /// Packets whose headers end in a protocol the parser does not know:
    /// everything after the last header it knows was zeroed.
    pub unknown_protocols: u64,
    /// Helper outputs copying packet bytes that were redacted, and those
    /// kept because their bytes were not found in the recorded packet.
    pub packet_copies_redacted: u64,
    pub packet_copies_kept: u64,
    /// `bpf_get_current_comm` outputs zeroed.
    pub comm_outputs_zeroed: u64,
    pub hostname_dropped: bool,
    pub command_dropped: bool,
}

impl fmt::Display for RedactStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut lines = Vec::new();
        if self.packets_truncated > 0 {
            lines.push(format!(
                "cut {} packets to the snap length ({} bytes removed)",
                self.packets_truncated, self.packet_bytes_cut
            ));
        }
        if self.final_packets_truncated > 0 {
            lines.push(format!(
                "cut {} final packets to the snap length ({} bytes removed)",
                self.final_packets_truncated, self.final_bytes_cut
            ));
        }
        if self.payloads_zeroed > 0 {
            lines.push(format!(
                "zeroed the payload of {} packets and final packets ({} bytes)",
                self.payloads_zeroed, self.payload_bytes_zeroed
            ));
        }
        if self.unknown_protocols > 0 {
            lines.push(format!(
                "{} packets end in a protocol bpfrr does not parse: zeroed after the last known header",
                self.unknown_protocols
            ));
        }
        if self.packet_copies_redacted > 0 {
            lines.push(format!(
                "redacted {} packet copies made by bpf_skb_load_bytes/bpf_xdp_load_bytes",
                self.packet_copies_redacted
            ));
        }
        if self.packet_copies_kept > 0 {
            lines.push(format!(
                "kept {} helper outputs copying packet bytes unchanged: their bytes are not in the recorded packet",
                self.packet_copies_kept
            ));
        }
        if self.comm_outputs_zeroed > 0 {
            lines.push(format!(
                "zeroed {} bpf_get_current_comm outputs",
                self.comm_outputs_zeroed
            ));
        }
        if self.hostname_dropped {
            lines.push("dropped the host name".into());
        }
        if self.command_dropped {
            lines.push("dropped the recording command line".into());
        }
        if lines.is_empty() {
            lines.push("nothing to remove".into());
        }
        lines.push(format!(
            "{} of {} invocations changed",
            self.changed, self.invocations
        ));
        write!(f, "{}", lines.join("\n"))
    }
}

/// Helper ids whose outputs are relevant here.
struct HelperIds {
    comm: u32,
    packet_copies: [u32; 3],
}

fn ids() -> &'static HelperIds {
    static IDS: OnceLock<HelperIds> = OnceLock::new();
    IDS.get_or_init(|| {
        let id = |n| helper_by_name(n).map_or(u32::MAX, |h| h.id);
        HelperIds {
            comm: id("get_current_comm"),
            packet_copies: [
                id("skb_load_bytes"),
                id("skb_load_bytes_relative"),
                id("xdp_load_bytes"),
            ],
        }
    })
}

/// Removes the host name and command line when `drop_comm` is set, and
/// notes the redaction.
pub fn redact_meta(meta: &mut TraceMeta, opts: &RedactOptions, stats: &mut RedactStats) {
    if opts.drop_comm {
        stats.hostname_dropped |= meta.hostname.take().is_some();
        stats.command_dropped |= !meta.command.is_empty();
        meta.command.clear();
    }
    if !opts.is_empty() {
        if !meta.notes.is_empty() {
            meta.notes.push('\n');
        }
        meta.notes.push_str(&opts.describe());
    }
}

/// Zeroes `p[from..]`; returns the bytes that were not zero already.
fn zero_from(p: &mut [u8], from: usize) -> u64 {
    let tail = p.get_mut(from..).unwrap_or_default();
    let n = tail.iter().filter(|&&b| b != 0).count() as u64;
    tail.fill(0);
    n
}

/// Where the bytes to keep of a packet end: the snap length, and with
/// `zero_payload`, the end of the headers (from there on, zeros).
struct Cut {
    keep: usize,
    zero_from: Option<usize>,
    unknown_protocol: bool,
}

fn cut_of(p: &[u8], link: Option<LinkLayer>, opts: &RedactOptions) -> Cut {
    let keep = opts.snaplen.map_or(p.len(), |n| p.len().min(n as usize));
    let (zero_from, unknown_protocol) = match (opts.zero_payload, link) {
        (true, Some(link)) => {
            let h = header_end(p, link);
            (Some(h.offset), h.unknown_protocol)
        }
        _ => (None, false),
    };
    Cut {
        keep,
        zero_from,
        unknown_protocol,
    }
}

/// Applies `cut` to packet `p`; returns (bytes cut, bytes zeroed).
fn apply(p: &mut Vec<u8>, cut: &Cut) -> (u64, u64) {
    let zeroed = cut
        .zero_from
        .map_or(0, |z| zero_from(&mut p[..cut.keep], z));
    let removed = (p.len() - cut.keep) as u64;
    p.truncate(cut.keep);
    (removed, zeroed)
}

/// Redacts one invocation of a program of type `prog_type`; returns
/// whether it changed.
pub fn redact_invocation(
    inv: &mut Invocation,
    prog_type: u32,
    opts: &RedactOptions,
    stats: &mut RedactStats,
) -> bool {
    stats.invocations += 1;
    let mut changed = false;
    let original_packet = inv.packet.clone();
    let mut packet_cut = None;
    if let Some(p) = inv.packet.as_mut() {
        let link = LinkLayer::of(prog_type, p);
        let cut = cut_of(p, link, opts);
        let len = p.len();
        let (removed, zeroed) = apply(p, &cut);
        if removed > 0 {
            stats.packets_truncated += 1;
            stats.packet_bytes_cut += removed;
            inv.packet_truncated_from = Some(inv.packet_truncated_from.unwrap_or(len as u32));
        }
        if zeroed > 0 {
            stats.payloads_zeroed += 1;
            stats.payload_bytes_zeroed += zeroed;
            stats.unknown_protocols += u64::from(cut.unknown_protocol);
        }
        changed |= removed > 0 || zeroed > 0;
        packet_cut = Some(cut);
    }
    if let Some(p) = inv.final_packet.as_mut() {
        let link = LinkLayer::of(prog_type, p);
        let cut = cut_of(p, link, opts);
        let (removed, zeroed) = apply(p, &cut);
        if removed > 0 {
            stats.final_packets_truncated += 1;
            stats.final_bytes_cut += removed;
        }
        if zeroed > 0 {
            stats.payloads_zeroed += 1;
            stats.payload_bytes_zeroed += zeroed;
        }
        changed |= removed > 0 || zeroed > 0;
    }
    let ids = ids();
    for e in inv
        .events
        .iter_mut()
        .filter(|e| e.kind == EventKind::Helper)
    {
        if opts.drop_comm && e.id == ids.comm {
            for o in &mut e.outputs {
                if o.bytes.iter().any(|&b| b != 0) {
                    o.bytes.fill(0);
                    stats.comm_outputs_zeroed += 1;
                    changed = true;
                }
            }
        }
        if let (Some(packet), Some(cut)) = (&original_packet, &packet_cut)
            && (opts.snaplen.is_some() || opts.zero_payload)
            && ids.packet_copies.contains(&e.id)
        {
            // Bytes at packet offsets from `limit` on were removed.
            let limit = cut.zero_from.unwrap_or(usize::MAX).min(cut.keep);
            for o in &mut e.outputs {
                if o.bytes.is_empty() {
                    continue;
                }
                let Some(at) = find(packet, &o.bytes) else {
                    stats.packet_copies_kept += 1;
                    continue;
                };
                let from = limit.saturating_sub(at);
                if zero_from(&mut o.bytes, from) > 0 {
                    stats.packet_copies_redacted += 1;
                    changed = true;
                }
            }
        }
    }
    stats.changed += u64::from(changed);
    changed
}

/// The first offset of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Writes `trace` redacted with `opts` to `out`.
pub fn write_redacted(
    trace: &Trace,
    opts: &RedactOptions,
    out: &Path,
) -> Result<RedactStats, EditError> {
    super::check_output_path(Path::new(trace.name()), out)?;
    let mut stats = RedactStats::default();
    let mut meta = trace.meta().clone();
    redact_meta(&mut meta, opts, &mut stats);
    let mut w = TraceWriter::create(out, meta, trace.programs().to_vec(), trace.maps().to_vec())?;
    for inv in trace.iter_invocations() {
        let mut inv = inv?.to_owned_invocation();
        let prog_type = trace.programs()[inv.program as usize].prog_type;
        redact_invocation(&mut inv, prog_type, opts, &mut stats);
        w.push(inv)?;
    }
    for l in trace.lost() {
        w.add_lost(l.cpu, l.count);
    }
    w.finish()?;
    Ok(stats)
}
