//! Internet checksum arithmetic as the x86-64 kernel does it, and the
//! checksum helpers built on it: `bpf_csum_diff`, `bpf_l3_csum_replace`,
//! `bpf_l4_csum_replace`.
//!
//! Values are handled the way the kernel sees them: 16/32-bit words loaded
//! little-endian from network-order bytes, so a checksum field is the `u16`
//! read from its two bytes and helpers' `from`/`to` are what the program
//! loaded from the packet. The exact representative of one's-complement
//! zero (0 or 0xffff) follows the kernel's code paths, because programs and
//! tests compare raw bytes.

use crate::maps::errno::{EFAULT, EINVAL};

/// `BPF_F_HDR_FIELD_MASK`: the size (0, 2 or 4) in the csum_replace flags.
pub const BPF_F_HDR_FIELD_MASK: u64 = 0xf;
pub const BPF_F_PSEUDO_HDR: u64 = 1 << 4;
pub const BPF_F_MARK_MANGLED_0: u64 = 1 << 5;
pub const BPF_F_MARK_ENFORCE: u64 = 1 << 6;
pub const BPF_F_IPV6: u64 = 1 << 7;
/// What a zero UDP checksum becomes with `BPF_F_MARK_MANGLED_0`.
pub const CSUM_MANGLED_0: u16 = 0xffff;

/// `csum_partial` (arch/x86/lib/csum-partial_64.c): 64-bit one's-complement
/// sum of little-endian words (the tail zero-padded), folded to 32 bits.
pub fn csum_partial(data: &[u8], seed: u32) -> u32 {
    let mut total: u128 = seed as u128;
    for chunk in data.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        total += u64::from_le_bytes(w) as u128;
    }
    // Adding with end-around carry gives the sum modulo 2^64-1, and is only
    // 0 when nothing non-zero was added.
    const M: u128 = u64::MAX as u128;
    let t = if total == 0 {
        0u64
    } else {
        match (total % M) as u64 {
            0 => u64::MAX,
            r => r,
        }
    };
    // csum_finalize_sum: (t + ror64(t, 32)) >> 32
    (t.wrapping_add(t.rotate_right(32)) >> 32) as u32
}

/// `csum_add`: 32-bit one's-complement addition.
pub fn csum_add(csum: u32, addend: u32) -> u32 {
    let res = csum.wrapping_add(addend);
    res.wrapping_add((res < addend) as u32)
}

/// `csum_sub`.
pub fn csum_sub(csum: u32, addend: u32) -> u32 {
    csum_add(csum, !addend)
}

/// `csum_fold`: folds a 32-bit sum to 16 bits and complements it.
pub fn csum_fold(sum: u32) -> u16 {
    let s = (sum >> 16) + (sum & 0xffff);
    let s = if s >= 0x10000 { s - 0xffff } else { s };
    !(s as u16)
}

/// `csum_from32to16`: folds without complementing (used by `bpf_csum_diff`).
pub fn csum_from32to16(sum: u32) -> u16 {
    (sum.wrapping_add(sum.rotate_right(16)) >> 16) as u16
}

fn csum16_add(csum: u16, addend: u16) -> u16 {
    let res = csum.wrapping_add(addend);
    res.wrapping_add((res < addend) as u16)
}

/// `csum_replace4`: updates checksum `sum` for a 32-bit word changing from `from` to `to`.
pub fn csum_replace4(sum: u16, from: u32, to: u32) -> u16 {
    let tmp = csum_sub(!(sum as u32), from);
    csum_fold(csum_add(tmp, to))
}

/// `csum_replace2`: the same for a 16-bit word (16-bit arithmetic).
pub fn csum_replace2(sum: u16, from: u16, to: u16) -> u16 {
    !csum16_add(csum16_add(!sum, !from), to)
}

/// `csum_replace_by_diff`: applies a checksum difference (from `bpf_csum_diff`).
pub fn csum_replace_by_diff(sum: u16, diff: u32) -> u16 {
    csum_fold(csum_add(diff, !(sum as u32)))
}

/// `bpf_csum_diff` (Linux 6.13 and later): the one's-complement difference
/// of `to` minus `from`, plus `seed`, folded to 16 bits (not complemented).
pub fn csum_diff(from: &[u8], to: &[u8], seed: u32) -> u64 {
    let r = match (from.is_empty(), to.is_empty()) {
        (false, false) => csum_from32to16(csum_sub(csum_partial(to, seed), csum_partial(from, 0))),
        (true, false) => csum_from32to16(csum_partial(to, seed)),
        (false, true) => csum_from32to16(!csum_partial(from, !seed)),
        (true, true) => return seed as u64,
    };
    r as u64
}

/// Where the checksum field of a csum_replace call is, or the errno.
fn field(packet_len: usize, offset: u32) -> Result<usize, i32> {
    if offset > 0xffff || offset & 1 != 0 {
        return Err(EFAULT);
    }
    // bpf_try_make_writable: the field must be inside the packet.
    if offset as usize + 2 > packet_len {
        return Err(EFAULT);
    }
    Ok(offset as usize)
}

fn get16(p: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([p[o], p[o + 1]])
}

fn put16(p: &mut [u8], o: usize, v: u16) {
    p[o..o + 2].copy_from_slice(&v.to_le_bytes());
}

/// `bpf_l3_csum_replace` on the packet data (`skb->data` onwards). Returns
/// the errno on failure.
pub fn l3_csum_replace(
    packet: &mut [u8],
    offset: u32,
    from: u64,
    to: u64,
    flags: u64,
) -> Result<(), i32> {
    if flags & !BPF_F_HDR_FIELD_MASK != 0 {
        return Err(EINVAL);
    }
    let o = field(packet.len(), offset)?;
    let sum = get16(packet, o);
    let new = match flags & BPF_F_HDR_FIELD_MASK {
        0 if from != 0 => return Err(EINVAL),
        0 => csum_replace_by_diff(sum, to as u32),
        2 => csum_replace2(sum, from as u16, to as u16),
        4 => csum_replace4(sum, from as u32, to as u32),
        _ => return Err(EINVAL),
    };
    put16(packet, o, new);
    Ok(())
}

/// `bpf_l4_csum_replace` on the packet data. The skb is modelled as
/// `CHECKSUM_NONE` (what BPF_PROG_TEST_RUN builds), so `BPF_F_PSEUDO_HDR`
/// changes no packet byte (it only matters for `skb->csum`).
pub fn l4_csum_replace(
    packet: &mut [u8],
    offset: u32,
    from: u64,
    to: u64,
    flags: u64,
) -> Result<(), i32> {
    let known = BPF_F_MARK_MANGLED_0
        | BPF_F_MARK_ENFORCE
        | BPF_F_PSEUDO_HDR
        | BPF_F_IPV6
        | BPF_F_HDR_FIELD_MASK;
    if flags & !known != 0 {
        return Err(EINVAL);
    }
    let mangled_0 = flags & BPF_F_MARK_MANGLED_0 != 0;
    let enforce = flags & BPF_F_MARK_ENFORCE != 0;
    let o = field(packet.len(), offset)?;
    let sum = get16(packet, o);
    if mangled_0 && !enforce && sum == 0 {
        return Ok(());
    }
    let mut new = match flags & BPF_F_HDR_FIELD_MASK {
        0 if from != 0 => return Err(EINVAL),
        0 => csum_replace_by_diff(sum, to as u32),
        // inet_proto_csum_replace2 widens to 32 bits and uses csum_replace4.
        2 => csum_replace4(sum, from as u16 as u32, to as u16 as u32),
        4 => csum_replace4(sum, from as u32, to as u32),
        _ => return Err(EINVAL),
    };
    if mangled_0 && new == 0 {
        new = CSUM_MANGLED_0;
    }
    put16(packet, o, new);
    Ok(())
}

/// The IPv4 header checksum of `header` (checksum field included as is):
/// 0 when the header is consistent. For tests and display.
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    csum_fold(csum_partial(header, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20-byte IPv4 header with a correct checksum (RFC 1071 example style).
    fn ipv4() -> Vec<u8> {
        let mut h = vec![
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let c = ipv4_header_checksum(&h);
        h[10..12].copy_from_slice(&c.to_le_bytes());
        h
    }

    #[test]
    fn known_ipv4_checksum() {
        // The classic example: checksum 0xb861 for this header.
        let h = ipv4();
        assert_eq!(&h[10..12], &[0xb8, 0x61]);
        assert_eq!(ipv4_header_checksum(&h), 0);
    }

    #[test]
    fn l3_replace4_keeps_header_consistent() {
        let mut h = ipv4();
        let old = u32::from_le_bytes(h[16..20].try_into().unwrap());
        let new_addr = [10u8, 1, 2, 3];
        let new = u32::from_le_bytes(new_addr);
        h[16..20].copy_from_slice(&new_addr);
        l3_csum_replace(&mut h, 10, old as u64, new as u64, 4).unwrap();
        assert_eq!(ipv4_header_checksum(&h), 0);
    }

    #[test]
    fn l3_replace2_and_by_diff_agree_with_recompute() {
        let mut h = ipv4();
        // TTL/protocol word changes (TTL decrement).
        let old = u16::from_le_bytes([h[8], h[9]]);
        h[8] -= 1;
        let new = u16::from_le_bytes([h[8], h[9]]);
        l3_csum_replace(&mut h, 10, old as u64, new as u64, 2).unwrap();
        assert_eq!(ipv4_header_checksum(&h), 0);
        // Same change through csum_diff + replace_by_diff.
        let mut g = ipv4();
        let from = g[8..12].to_vec();
        g[8] -= 1;
        let mut to = g[8..12].to_vec();
        to[2..4].copy_from_slice(&from[2..4]);
        let diff = csum_diff(&from, &to, 0);
        l3_csum_replace(&mut g, 10, 0, diff, 0).unwrap();
        assert_eq!(ipv4_header_checksum(&g), 0);
    }

    #[test]
    fn replace_errors() {
        let mut h = ipv4();
        assert_eq!(l3_csum_replace(&mut h, 10, 0, 0, 1 << 4), Err(EINVAL));
        assert_eq!(l3_csum_replace(&mut h, 10, 1, 0, 0), Err(EINVAL));
        assert_eq!(l3_csum_replace(&mut h, 10, 1, 0, 3), Err(EINVAL));
        assert_eq!(l3_csum_replace(&mut h, 11, 1, 0, 2), Err(EFAULT));
        assert_eq!(l3_csum_replace(&mut h, 20, 1, 0, 2), Err(EFAULT));
        assert_eq!(l4_csum_replace(&mut h, 10, 0, 0, 1 << 8), Err(EINVAL));
    }

    #[test]
    fn l4_mangled_zero() {
        let mut p = vec![0u8; 8];
        // A zero UDP checksum is left alone with BPF_F_MARK_MANGLED_0...
        l4_csum_replace(&mut p, 6, 1, 2, 4 | BPF_F_MARK_MANGLED_0).unwrap();
        assert_eq!(&p[6..8], &[0, 0]);
        // ...unless BPF_F_MARK_ENFORCE is given too.
        l4_csum_replace(
            &mut p,
            6,
            1,
            2,
            4 | BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE,
        )
        .unwrap();
        assert_ne!(&p[6..8], &[0, 0]);
        // A result of 0 becomes CSUM_MANGLED_0: find a change that yields 0.
        let mut q = vec![0u8; 8];
        q[6..8].copy_from_slice(&0x00feu16.to_le_bytes());
        let to = (0..0x10000u32)
            .find(|&t| csum_replace4(0x00fe, 0, t) == 0)
            .expect("some word zeroes the sum");
        l4_csum_replace(
            &mut q,
            6,
            0,
            to as u64,
            4 | BPF_F_MARK_MANGLED_0 | BPF_F_PSEUDO_HDR,
        )
        .unwrap();
        assert_eq!(u16::from_le_bytes([q[6], q[7]]), CSUM_MANGLED_0);
    }

    #[test]
    fn csum_diff_cases() {
        assert_eq!(csum_diff(&[], &[], 0x1234), 0x1234);
        let to = [1u8, 2, 3, 4];
        // Pushing data: the sum of `to` folded.
        assert_eq!(
            csum_diff(&[], &to, 0),
            csum_from32to16(csum_partial(&to, 0)) as u64
        );
        // Diffing equal data gives (one's-complement) zero.
        let d = csum_diff(&to, &to, 0);
        assert!(d == 0 || d == 0xffff, "{d:#x}");
        // Pulling then pushing the same data cancels out.
        let pulled = csum_diff(&to, &[], 0x5555);
        let pushed = csum_diff(&[], &to, pulled as u32);
        assert_eq!(csum_from32to16(pushed as u32), 0x5555);
    }

    #[test]
    fn fold_representatives() {
        assert_eq!(csum_fold(0), 0xffff);
        assert_eq!(csum_fold(0xffff_0000), 0);
        assert_eq!(csum_fold(0x0000_ffff), 0);
        assert_eq!(csum_fold(0x0001_ffff), 0xfffe);
        assert_eq!(csum_partial(&[], 0), 0);
        assert_eq!(csum_partial(&[0xff; 8], 0), 0xffff_ffff);
        assert_eq!(csum_from32to16(0x1234_5678), 0x68ac);
    }
}
