//! Soundness check primitive: does a concrete register value lie inside
//! the abstract state the verifier held? A value outside every state the
//! verifier held at an instruction is either a verifier bug or a
//! recording bug — worth a report either way.
//!
//! The VM's pointers are tagged addresses, not kernel addresses, so a
//! pointer is described by what it points into ([`ValueRegion`]) and its
//! offset there; only scalars are compared bit for bit.

use super::reg::{RegKind, RegState};

/// What a concrete register value is, as the replay knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueRegion {
    /// A plain number (not a pointer).
    Scalar,
    /// A pointer into stack frame `frame`, `offset` bytes from that
    /// frame's r10 (negative inside the frame).
    Stack { frame: u32, offset: i64 },
    /// A pointer into the context, `offset` bytes from its start.
    Context { offset: i64 },
    /// A pointer into the packet, `offset` bytes from `data`.
    Packet { offset: i64 },
    /// A pointer `offset` bytes from `data_end`.
    PacketEnd { offset: i64 },
    /// A pointer `offset` bytes from `data_meta`.
    PacketMeta { offset: i64 },
    /// A map object (what `ld_imm64 map` yields), with its sizes.
    MapObject { key_size: u32, value_size: u32 },
    /// A pointer into a map value (or global data), with the value size.
    MapValue { offset: i64, value_size: u32 },
    /// A pointer into memory a helper returned (ring buffer record...).
    Memory { offset: i64, size: u64 },
    /// A code address (callback function pointer).
    Code,
    /// Some other kind of pointer the replay cannot classify.
    Other,
}

/// Whether the concrete `value` (its 64 bits; for pointers, the tagged
/// address, not compared) described by `region` lies within `state`.
///
/// - `NotInit`: anything (the verifier makes no claim).
/// - scalars: every bound (64/32-bit, signed/unsigned) and the tnum; a
///   pointer is inside a scalar state only if that state knows nothing.
/// - pointers: the kind must match, and the offset minus the fixed `off`
///   must satisfy the variable part's bounds; `*_or_null` also admits a
///   NULL scalar; sizes must agree where both sides know them.
pub fn contains(state: &RegState, value: u64, region: &ValueRegion) -> bool {
    if state.kind == RegKind::NotInit {
        return true;
    }
    if state.flags.or_null && *region == ValueRegion::Scalar && value == 0 {
        return true;
    }
    let var_ok = |offset: i64| {
        let var = offset.wrapping_sub(state.off) as u64;
        state.bounds.contains(var)
    };
    match (&state.kind, region) {
        (RegKind::Scalar, ValueRegion::Scalar) => state.bounds.contains(value),
        (RegKind::Scalar, _) => state.bounds.is_unknown(),
        (RegKind::Stack, ValueRegion::Stack { frame, offset }) => {
            state.frameno.is_none_or(|f| f == *frame) && var_ok(*offset)
        }
        (RegKind::Ctx, ValueRegion::Context { offset }) => var_ok(*offset),
        (RegKind::Packet, ValueRegion::Packet { offset }) => var_ok(*offset),
        (RegKind::PacketEnd, ValueRegion::PacketEnd { offset }) => var_ok(*offset),
        (RegKind::PacketMeta, ValueRegion::PacketMeta { offset }) => var_ok(*offset),
        (
            RegKind::MapPtr,
            ValueRegion::MapObject {
                key_size,
                value_size,
            },
        ) => state
            .map
            .as_ref()
            .is_none_or(|m| m.key_size == *key_size && m.value_size == *value_size),
        (RegKind::MapValue, ValueRegion::MapValue { offset, value_size }) => {
            state
                .map
                .as_ref()
                .is_none_or(|m| m.value_size == *value_size)
                && var_ok(*offset)
        }
        (RegKind::Mem | RegKind::Buf, ValueRegion::Memory { offset, size }) => {
            state.mem_size.is_none_or(|s| s == *size) && var_ok(*offset)
        }
        (RegKind::Func, ValueRegion::Code) => true,
        // Kernel objects (BTF pointers, sockets...) the replay cannot see:
        // no claim either way.
        (
            RegKind::Btf(_)
            | RegKind::Socket
            | RegKind::SockCommon
            | RegKind::TcpSock
            | RegKind::XdpSock
            | RegKind::FlowKeys
            | RegKind::TpBuffer
            | RegKind::Arena
            | RegKind::DynptrPtr
            | RegKind::MapKey
            | RegKind::Other(_),
            ValueRegion::Other | ValueRegion::Memory { .. },
        ) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> RegState {
        RegState::parse(s).unwrap()
    }

    #[test]
    fn scalars() {
        let byte = st("scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))");
        assert!(contains(&byte, 0, &ValueRegion::Scalar));
        assert!(contains(&byte, 255, &ValueRegion::Scalar));
        assert!(!contains(&byte, 256, &ValueRegion::Scalar));
        // Known bits: multiples of 4 up to 60.
        let m = st("scalar(smin=smin32=0,smax=umax=smax32=umax32=60,var_off=(0x0; 0x3c))");
        assert!(contains(&m, 8, &ValueRegion::Scalar));
        assert!(!contains(&m, 9, &ValueRegion::Scalar));
        // Constants, including negative ones printed in decimal.
        assert!(contains(&st("-1"), u64::MAX, &ValueRegion::Scalar));
        assert!(!contains(&st("-1"), 0xffff_ffff, &ValueRegion::Scalar));
        assert!(contains(
            &st("0xffffffff"),
            0xffff_ffff,
            &ValueRegion::Scalar
        ));
        // 32-bit bounds alone.
        let w = st(
            "scalar(smin=0,smax=umax=0xffffffff,smin32=-5000,smax32=0xec77,var_off=(0x0; 0xffffffff))",
        );
        assert!(contains(&w, (-5000i32) as u32 as u64, &ValueRegion::Scalar));
        assert!(!contains(&w, 0xec78, &ValueRegion::Scalar));
        // Unknown scalar: anything, even a pointer.
        assert!(contains(&st("scalar()"), 12345, &ValueRegion::Scalar));
        assert!(contains(
            &st("scalar()"),
            1,
            &ValueRegion::Packet { offset: 0 }
        ));
        assert!(!contains(&byte, 1, &ValueRegion::Packet { offset: 0 }));
    }

    #[test]
    fn pointers() {
        let p = st("pkt(off=14,r=14)");
        assert!(contains(&p, 0, &ValueRegion::Packet { offset: 14 }));
        assert!(!contains(&p, 0, &ValueRegion::Packet { offset: 15 }));
        assert!(!contains(&p, 0, &ValueRegion::Context { offset: 14 }));
        assert!(contains(
            &st("pkt_end()"),
            0,
            &ValueRegion::PacketEnd { offset: 0 }
        ));
        let fp = st("fp-24");
        assert!(contains(
            &fp,
            0,
            &ValueRegion::Stack {
                frame: 0,
                offset: -24
            }
        ));
        assert!(!contains(
            &fp,
            0,
            &ValueRegion::Stack {
                frame: 0,
                offset: -16
            }
        ));
        let fp1 = st("fp[0]-24");
        assert!(!contains(
            &fp1,
            0,
            &ValueRegion::Stack {
                frame: 1,
                offset: -24
            }
        ));
        // A variable offset: pkt + (0..60 in steps of 4).
        let v =
            st("pkt(id=2,off=14,r=0,smin=smin32=0,smax=umax=smax32=umax32=60,var_off=(0x0; 0x3c))");
        assert!(contains(&v, 0, &ValueRegion::Packet { offset: 14 + 20 }));
        assert!(!contains(&v, 0, &ValueRegion::Packet { offset: 14 + 21 }));
        assert!(!contains(&v, 0, &ValueRegion::Packet { offset: 13 }));
        // Maps: NULL is fine for _or_null, not after the check.
        let on = st("map_value_or_null(id=1,map=verdicts,ks=4,vs=8)");
        assert!(contains(&on, 0, &ValueRegion::Scalar));
        assert!(contains(
            &on,
            0,
            &ValueRegion::MapValue {
                offset: 0,
                value_size: 8
            }
        ));
        assert!(!contains(
            &on,
            0,
            &ValueRegion::MapValue {
                offset: 0,
                value_size: 16
            }
        ));
        let mv = st("map_value(map=verdicts,ks=4,vs=8)");
        assert!(!contains(&mv, 0, &ValueRegion::Scalar));
        let mp = st("map_ptr(map=verdicts,ks=4,vs=8)");
        assert!(contains(
            &mp,
            0,
            &ValueRegion::MapObject {
                key_size: 4,
                value_size: 8
            }
        ));
        assert!(!contains(
            &mp,
            0,
            &ValueRegion::MapObject {
                key_size: 8,
                value_size: 8
            }
        ));
        let rb = st("ringbuf_mem(ref_obj_id=4,off=32,sz=160)");
        assert!(contains(
            &rb,
            0,
            &ValueRegion::Memory {
                offset: 32,
                size: 160
            }
        ));
        assert!(!contains(
            &rb,
            0,
            &ValueRegion::Memory {
                offset: 0,
                size: 160
            }
        ));
        assert!(contains(
            &st("ctx()"),
            0,
            &ValueRegion::Context { offset: 0 }
        ));
        assert!(contains(
            &RegState::of_kind(RegKind::NotInit),
            7,
            &ValueRegion::Other
        ));
    }
}
