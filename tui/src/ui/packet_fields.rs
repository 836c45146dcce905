//! What the bytes of a packet are: Ethernet, up to two VLAN tags, IPv4 or
//! IPv6, TCP or UDP, parsed from the packet itself so the UI can say
//! "offset 26 is the IPv4 source address 192.0.2.7".

/// Where the packet data starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLayer {
    /// An Ethernet frame (XDP, TC, socket filters).
    Ethernet,
    /// The IP header (cgroup skb programs).
    Ip,
}

/// One named header field: bytes `start..start+len` of the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub start: usize,
    pub len: usize,
    pub name: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mac,
    Ipv4,
    Ipv6,
    EtherType,
    Decimal,
    Hex,
}

impl Field {
    /// The field's value as it reads in the packet: `192.0.2.7`, `0x0800 (IPv4)`, `443`.
    pub fn value(&self, packet: &[u8]) -> Option<String> {
        let b = packet.get(self.start..self.start + self.len)?;
        let be = b.iter().fold(0u64, |a, &x| (a << 8) | x as u64);
        Some(match self.kind {
            Kind::Mac => b
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
            Kind::Ipv4 => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
            Kind::Ipv6 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(b).ok()?).to_string(),
            Kind::EtherType => match ethertype_name(be as u16) {
                Some(n) => format!("{be:#06x} ({n})"),
                None => format!("{be:#06x}"),
            },
            Kind::Decimal => be.to_string(),
            Kind::Hex => format!("{be:#x}"),
        })
    }
}

fn ethertype_name(t: u16) -> Option<&'static str> {
    Some(match t {
        0x0800 => "IPv4",
        0x86dd => "IPv6",
        0x0806 => "ARP",
        0x8100 => "802.1Q VLAN",
        0x88a8 => "802.1ad VLAN",
        _ => return None,
    })
}

fn f(start: usize, len: usize, name: &'static str, kind: Kind) -> Field {
    Field {
        start,
        len,
        name,
        kind,
    }
}

/// The header fields of `packet`, in order, as far as its bytes go.
pub fn fields(packet: &[u8], link: LinkLayer) -> Vec<Field> {
    let mut out = Vec::new();
    let be16 = |o: usize| {
        packet
            .get(o..o + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (mut l3, ethertype) = match link {
        LinkLayer::Ethernet => {
            out.push(f(0, 6, "Ethernet destination MAC", Kind::Mac));
            out.push(f(6, 6, "Ethernet source MAC", Kind::Mac));
            out.push(f(12, 2, "EtherType", Kind::EtherType));
            let mut at = 14;
            let mut t = be16(12);
            for _ in 0..2 {
                if !matches!(t, Some(0x8100 | 0x88a8)) {
                    break;
                }
                out.push(f(at, 2, "VLAN tag control (TCI)", Kind::Hex));
                out.push(f(at + 2, 2, "VLAN encapsulated EtherType", Kind::EtherType));
                t = be16(at + 2);
                at += 4;
            }
            (at, t)
        }
        LinkLayer::Ip => match packet.first().map(|b| b >> 4) {
            Some(4) => (0, Some(0x0800)),
            Some(6) => (0, Some(0x86dd)),
            _ => (0, None),
        },
    };
    let l4_proto;
    match ethertype {
        Some(0x0800) => {
            for (o, n, name, k) in [
                (0, 1, "IPv4 version and header length", Kind::Hex),
                (1, 1, "IPv4 type of service", Kind::Hex),
                (2, 2, "IPv4 total length", Kind::Decimal),
                (4, 2, "IPv4 identification", Kind::Hex),
                (6, 2, "IPv4 flags and fragment offset", Kind::Hex),
                (8, 1, "IPv4 TTL", Kind::Decimal),
                (9, 1, "IPv4 protocol", Kind::Decimal),
                (10, 2, "IPv4 header checksum", Kind::Hex),
                (12, 4, "IPv4 source address", Kind::Ipv4),
                (16, 4, "IPv4 destination address", Kind::Ipv4),
            ] {
                out.push(f(l3 + o, n, name, k));
            }
            l4_proto = packet.get(l3 + 9).copied();
            let ihl = packet.get(l3).map_or(5, |b| (b & 15) as usize).max(5);
            l3 += ihl * 4;
        }
        Some(0x86dd) => {
            for (o, n, name, k) in [
                (
                    0,
                    4,
                    "IPv6 version, traffic class and flow label",
                    Kind::Hex,
                ),
                (4, 2, "IPv6 payload length", Kind::Decimal),
                (6, 1, "IPv6 next header", Kind::Decimal),
                (7, 1, "IPv6 hop limit", Kind::Decimal),
                (8, 16, "IPv6 source address", Kind::Ipv6),
                (24, 16, "IPv6 destination address", Kind::Ipv6),
            ] {
                out.push(f(l3 + o, n, name, k));
            }
            l4_proto = packet.get(l3 + 6).copied();
            l3 += 40;
        }
        _ => return out,
    }
    let l4 = l3;
    match l4_proto {
        Some(6) => {
            for (o, n, name, k) in [
                (0, 2, "TCP source port", Kind::Decimal),
                (2, 2, "TCP destination port", Kind::Decimal),
                (4, 4, "TCP sequence number", Kind::Decimal),
                (8, 4, "TCP acknowledgment number", Kind::Decimal),
                (12, 2, "TCP data offset and flags", Kind::Hex),
                (14, 2, "TCP window", Kind::Decimal),
                (16, 2, "TCP checksum", Kind::Hex),
                (18, 2, "TCP urgent pointer", Kind::Decimal),
            ] {
                out.push(f(l4 + o, n, name, k));
            }
        }
        Some(17) => {
            for (o, name, k) in [
                (0, "UDP source port", Kind::Decimal),
                (2, "UDP destination port", Kind::Decimal),
                (4, "UDP length", Kind::Decimal),
                (6, "UDP checksum", Kind::Hex),
            ] {
                out.push(f(l4 + o, 2, name, k));
            }
        }
        _ => {}
    }
    out.retain(|x| x.start + x.len <= packet.len());
    out
}

/// Names bytes `start..start+len` of the packet: "IPv4 source address
/// 192.0.2.7" when the access is exactly one field, "part of the IPv4
/// source address" inside one, "IPv4 source address, ..." across several.
pub fn describe(packet: &[u8], link: LinkLayer, start: usize, len: usize) -> Option<String> {
    let all = fields(packet, link);
    let end = start + len;
    if let Some(x) = all.iter().find(|x| x.start == start && x.len == len) {
        return Some(match x.value(packet) {
            Some(v) => format!("{} {v}", x.name),
            None => x.name.to_string(),
        });
    }
    if let Some(x) = all
        .iter()
        .find(|x| x.start <= start && end <= x.start + x.len)
    {
        return Some(format!("part of the {}", x.name));
    }
    let covered: Vec<&str> = all
        .iter()
        .filter(|x| x.start < end && start < x.start + x.len)
        .map(|x| x.name)
        .collect();
    match covered.len() {
        0 => None,
        1 => Some(format!("part of the {}", covered[0])),
        _ => Some(format!("{} to {}", covered[0], covered[covered.len() - 1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (192.0.2.7 -> 198.51.100.1) + TCP 1234 -> 23.
    fn ipv4_tcp() -> Vec<u8> {
        let mut p = vec![0u8; 54];
        p[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        p[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        p[12..14].copy_from_slice(&[0x08, 0x00]);
        p[14] = 0x45;
        p[23] = 6;
        p[26..30].copy_from_slice(&[192, 0, 2, 7]);
        p[30..34].copy_from_slice(&[198, 51, 100, 1]);
        p[34..36].copy_from_slice(&1234u16.to_be_bytes());
        p[36..38].copy_from_slice(&23u16.to_be_bytes());
        p
    }

    #[test]
    fn names_ipv4_and_tcp_fields() {
        let p = ipv4_tcp();
        let e = LinkLayer::Ethernet;
        assert_eq!(
            describe(&p, e, 26, 4).as_deref(),
            Some("IPv4 source address 192.0.2.7")
        );
        assert_eq!(
            describe(&p, e, 12, 2).as_deref(),
            Some("EtherType 0x0800 (IPv4)")
        );
        assert_eq!(
            describe(&p, e, 36, 2).as_deref(),
            Some("TCP destination port 23")
        );
        assert_eq!(
            describe(&p, e, 6, 6).as_deref(),
            Some("Ethernet source MAC 02:00:00:00:00:02")
        );
        assert_eq!(
            describe(&p, e, 27, 1).as_deref(),
            Some("part of the IPv4 source address")
        );
        assert_eq!(
            describe(&p, e, 26, 8).as_deref(),
            Some("IPv4 source address to IPv4 destination address")
        );
    }

    #[test]
    fn vlan_tags_shift_the_ip_header() {
        let mut p = ipv4_tcp();
        p.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        assert_eq!(
            describe(&p, LinkLayer::Ethernet, 30, 4).as_deref(),
            Some("IPv4 source address 192.0.2.7")
        );
        assert_eq!(
            describe(&p, LinkLayer::Ethernet, 14, 2).as_deref(),
            Some("VLAN tag control (TCI) 0x2a")
        );
    }

    #[test]
    fn ip_layer_packets_and_truncation() {
        let p = ipv4_tcp();
        assert_eq!(
            describe(&p[14..], LinkLayer::Ip, 12, 4).as_deref(),
            Some("IPv4 source address 192.0.2.7")
        );
        // A 20-byte frame has only the Ethernet header named.
        let short = &p[..20];
        assert!(
            fields(short, LinkLayer::Ethernet)
                .iter()
                .all(|f| f.start + f.len <= 20)
        );
        assert_eq!(describe(short, LinkLayer::Ethernet, 26, 4), None);
    }
}
