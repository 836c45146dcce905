//! Where the headers of a recorded packet end: Ethernet (with 802.1Q /
//! 802.1ad tags), IPv4 (with options), IPv6 (with extension headers), TCP
//! (with options), UDP, ICMP and ICMPv6. Used to zero payloads and to pick
//! a pcap link type.

use crate::catalog::ProgType;

/// What a recorded packet of a program type starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkLayer {
    /// An Ethernet header (XDP, TC).
    Ethernet,
    /// An IPv4 or IPv6 header (socket filters and cgroup skb programs see
    /// the packet from the network header).
    Ip,
}

impl LinkLayer {
    /// The first header of `packet`, a packet given to a program of
    /// `prog_type` (the kernel's `enum bpf_prog_type`); None for program
    /// types that do not see packets. Socket filters see the packet from
    /// the network header on IP sockets but from the MAC header on packet
    /// sockets, so their packets are told apart by content: an IPv4/IPv6
    /// version nibble with a plausible header reads as IP.
    pub fn of(prog_type: u32, packet: &[u8]) -> Option<LinkLayer> {
        match ProgType::from_number(prog_type)? {
            ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct => Some(LinkLayer::Ethernet),
            ProgType::SocketFilter | ProgType::CgroupSkb => Some(if looks_like_ip(packet) {
                LinkLayer::Ip
            } else {
                LinkLayer::Ethernet
            }),
            _ => None,
        }
    }
}

/// An IPv4 header with a sane header length and total length, or an IPv6 header.
fn looks_like_ip(p: &[u8]) -> bool {
    match p.first().map(|b| b >> 4) {
        Some(4) => {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            let total = p
                .get(2..4)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            ihl >= 20 && total.is_some_and(|t| t >= ihl)
        }
        Some(6) => true,
        _ => false,
    }
}

/// How far the headers of a packet go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderEnd {
    /// Offset of the first byte after the last header understood.
    pub offset: usize,
    /// The last header understood ("tcp", "udp", "icmp", "ipv4", "ipv6",
    /// "ethernet"), for reports.
    pub last: &'static str,
    /// The parse ended on a protocol it does not know (the rest may hold
    /// headers of that protocol, treated as payload).
    pub unknown_protocol: bool,
}

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMP: u8 = 1;
const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_UDPLITE: u8 = 136;

fn be16(p: &[u8], at: usize) -> Option<u16> {
    p.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The end of the L2-L4 headers of `packet`. A header cut short by the
/// end of the packet ends the parse at the packet's end (nothing after it
/// is payload).
pub fn header_end(packet: &[u8], link: LinkLayer) -> HeaderEnd {
    let end = |offset, last, unknown| finish(packet, offset, last, unknown);
    let (l3, ethertype) = match link {
        LinkLayer::Ip => match packet.first().map(|b| b >> 4) {
            Some(4) => (0, ETH_P_IP),
            Some(6) => (0, ETH_P_IPV6),
            _ => return end(0, "none", true),
        },
        LinkLayer::Ethernet => {
            let mut at = 12;
            let Some(mut t) = be16(packet, at) else {
                return end(packet.len(), "ethernet", false);
            };
            while t == ETH_P_8021Q || t == ETH_P_8021AD {
                at += 4;
                match be16(packet, at) {
                    Some(next) => t = next,
                    None => return end(packet.len(), "vlan", false),
                }
            }
            (at + 2, t)
        }
    };
    match ethertype {
        ETH_P_IP => ipv4(packet, l3),
        ETH_P_IPV6 => ipv6(packet, l3),
        _ => end(l3, "ethernet", true),
    }
}

/// The result of a parse that ended at `offset` (clamped to the packet).
fn finish(p: &[u8], offset: usize, last: &'static str, unknown_protocol: bool) -> HeaderEnd {
    HeaderEnd {
        offset: offset.min(p.len()),
        last,
        unknown_protocol,
    }
}

fn ipv4(p: &[u8], at: usize) -> HeaderEnd {
    let end = |offset, last, unknown| finish(p, offset, last, unknown);
    let Some(&vihl) = p.get(at) else {
        return end(p.len(), "ipv4", false);
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return end(at + 20, "ipv4", true);
    }
    let l4 = at + ihl;
    // A fragment other than the first has no L4 header.
    let frag_offset = be16(p, at + 6).map_or(0, |f| f & 0x1fff);
    let proto = p.get(at + 9).copied().unwrap_or(0);
    if frag_offset != 0 {
        return end(l4, "ipv4", false);
    }
    l4_header(p, l4, proto, "ipv4")
}

fn ipv6(p: &[u8], at: usize) -> HeaderEnd {
    let end = |offset, last, unknown| finish(p, offset, last, unknown);
    let mut next = p.get(at + 6).copied().unwrap_or(0);
    let mut off = at + 40;
    // Extension headers: hop-by-hop (0), routing (43), fragment (44),
    // destination options (60), authentication (51).
    loop {
        match next {
            0 | 43 | 60 => {
                let (Some(&n), Some(&len)) = (p.get(off), p.get(off + 1)) else {
                    return end(p.len(), "ipv6", false);
                };
                next = n;
                off += (usize::from(len) + 1) * 8;
            }
            44 => {
                let Some(&n) = p.get(off) else {
                    return end(p.len(), "ipv6", false);
                };
                let frag_offset = be16(p, off + 2).map_or(0, |f| f >> 3);
                next = n;
                off += 8;
                if frag_offset != 0 {
                    return end(off, "ipv6", false);
                }
            }
            51 => {
                let (Some(&n), Some(&len)) = (p.get(off), p.get(off + 1)) else {
                    return end(p.len(), "ipv6", false);
                };
                next = n;
                off += (usize::from(len) + 2) * 4;
            }
            _ => break,
        }
    }
    l4_header(p, off, next, "ipv6")
}

fn l4_header(p: &[u8], at: usize, proto: u8, l3: &'static str) -> HeaderEnd {
    let end = |offset, last, unknown| finish(p, offset, last, unknown);
    match proto {
        IPPROTO_TCP => {
            let doff = p.get(at + 12).map_or(20, |b| usize::from(b >> 4) * 4);
            end(at + doff.max(20), "tcp", false)
        }
        IPPROTO_UDP | IPPROTO_UDPLITE => end(at + 8, "udp", false),
        IPPROTO_ICMP => end(at + 8, "icmp", false),
        IPPROTO_ICMPV6 => end(at + 8, "icmpv6", false),
        _ => end(at, l3, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(t: u16) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend(t.to_be_bytes());
        v
    }

    fn ipv4_hdr(proto: u8, ihl_words: u8) -> Vec<u8> {
        let mut v = vec![0u8; usize::from(ihl_words) * 4];
        v[0] = 0x40 | ihl_words;
        v[2..4].copy_from_slice(&100u16.to_be_bytes());
        v[9] = proto;
        v
    }

    #[test]
    fn ethernet_ipv4_udp_payload_starts_after_8_bytes_of_udp() {
        let mut p = eth(ETH_P_IP);
        p.extend(ipv4_hdr(IPPROTO_UDP, 5));
        p.extend([0u8; 8]);
        p.extend(b"payload");
        let e = header_end(&p, LinkLayer::Ethernet);
        assert_eq!((e.offset, e.last, e.unknown_protocol), (42, "udp", false));
    }

    #[test]
    fn vlan_tags_ip_options_and_tcp_options_are_followed() {
        let mut p = eth(ETH_P_8021AD);
        p.extend([0, 1]);
        p.extend(ETH_P_8021Q.to_be_bytes());
        p.extend([0, 2]);
        p.extend(ETH_P_IP.to_be_bytes());
        p.extend(ipv4_hdr(IPPROTO_TCP, 6)); // 24 bytes
        let mut tcp = vec![0u8; 32];
        tcp[12] = 8 << 4; // 32-byte header
        p.extend(tcp);
        p.extend(b"GET /");
        let e = header_end(&p, LinkLayer::Ethernet);
        assert_eq!(e.offset, 22 + 24 + 32);
        assert_eq!(e.last, "tcp");
    }

    #[test]
    fn ipv6_extension_headers_and_raw_ip_packets() {
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[6] = 0; // hop-by-hop
        let mut hbh = vec![0u8; 8];
        hbh[0] = IPPROTO_ICMPV6;
        p.extend(hbh);
        p.extend([0u8; 8]);
        p.extend([1, 2, 3]);
        assert_eq!(LinkLayer::of(1, &p), Some(LinkLayer::Ip));
        let e = header_end(&p, LinkLayer::Ip);
        assert_eq!((e.offset, e.last), (56, "icmpv6"));
    }

    #[test]
    fn unknown_protocols_and_short_packets() {
        let mut arp = eth(0x0806);
        arp.extend([0u8; 28]);
        let e = header_end(&arp, LinkLayer::Ethernet);
        assert_eq!((e.offset, e.unknown_protocol), (14, true));
        // A TCP header cut short: nothing after it.
        let mut p = eth(ETH_P_IP);
        p.extend(ipv4_hdr(IPPROTO_TCP, 5));
        p.extend([0u8; 4]);
        assert_eq!(header_end(&p, LinkLayer::Ethernet).offset, p.len());
        assert_eq!(header_end(&[], LinkLayer::Ethernet).offset, 0);
        assert_eq!(header_end(&[0x45], LinkLayer::Ip).offset, 1);
        // A non-first IPv4 fragment has no L4 header.
        let mut frag = ipv4_hdr(IPPROTO_UDP, 5);
        frag[6..8].copy_from_slice(&100u16.to_be_bytes());
        frag.extend([7u8; 30]);
        assert_eq!(header_end(&frag, LinkLayer::Ip).offset, 20);
    }

    #[test]
    fn link_layer_by_program_type() {
        let mut frame = eth(ETH_P_IP);
        frame.extend(ipv4_hdr(IPPROTO_UDP, 5));
        assert_eq!(LinkLayer::of(6, &frame), Some(LinkLayer::Ethernet)); // XDP
        assert_eq!(LinkLayer::of(3, &frame), Some(LinkLayer::Ethernet)); // TC
        assert_eq!(LinkLayer::of(8, &frame[14..]), Some(LinkLayer::Ip)); // cgroup skb
        assert_eq!(LinkLayer::of(1, &frame), Some(LinkLayer::Ethernet)); // packet socket
        assert_eq!(LinkLayer::of(5, &frame), None); // tracepoint
    }
}
