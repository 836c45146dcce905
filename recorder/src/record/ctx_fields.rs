//! Which context fields the entry block records, per program type.
//!
//! For `xdp_md` and `__sk_buff` the kernel rewrites every field load, and
//! which fields a program type may read differs by type, attach type and
//! kernel version. Rather than keep a table that drifts, bpfrr asks the
//! running kernel: one tiny program per candidate field (`r0 = *(u32 *)(r1 +
//! off); r0 = 0; exit`), kept when the verifier accepts it. Pointer
//! fields (data, data_end, data_meta, flow_keys, sk) are not values and
//! are left out: the packet is recorded on its own.

use std::collections::HashMap;
use std::sync::Mutex;

use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::isa::RawInsn;
use bpfrr_trace::isa::opcode::*;

use crate::instrument::{CtxCapture, CtxField};
use crate::sys::ProgLoad;

/// `sizeof(struct xdp_md)`, `sizeof(struct __sk_buff)`, x86-64 pt_regs.
pub const XDP_MD_SIZE: u32 = 24;
pub const SK_BUFF_SIZE: u32 = 192;
pub const PT_REGS_SIZE: u32 = 168;
/// Raw tracepoint arguments recorded when the driver does not say (u64 each).
pub const DEFAULT_RAW_TP_ARGS: u32 = 6;
/// Bytes of a tracepoint record recorded when the driver does not say.
pub const DEFAULT_TRACEPOINT_BYTES: u32 = 64;

/// `__sk_buff` fields that load as pointers, by (offset, size).
const SKB_POINTERS: &[(u16, u8)] = &[(76, 4), (80, 4), (140, 4), (144, 8), (168, 8)];
/// `__sk_buff` 64-bit value fields (tstamp, hwtstamp).
const SKB_U64: &[u16] = &[152, 184];
/// `__sk_buff.tstamp_type`: one byte.
const SKB_TSTAMP_TYPE: u16 = 180;

fn candidates(prog_type: ProgType) -> Option<(u32, Vec<CtxField>)> {
    match prog_type {
        ProgType::Xdp => Some((
            XDP_MD_SIZE,
            [12u16, 16, 20]
                .iter()
                .map(|&off| CtxField { off, size: 4 })
                .collect(),
        )),
        ProgType::SocketFilter | ProgType::SchedCls | ProgType::SchedAct | ProgType::CgroupSkb => {
            let mut v = Vec::new();
            let mut off = 0u16;
            while (off as u32) < SK_BUFF_SIZE {
                let in_pointer = SKB_POINTERS
                    .iter()
                    .any(|&(p, s)| off >= p && off < p + s as u16);
                let in_u64 = SKB_U64.iter().any(|&p| off == p + 4);
                if SKB_U64.contains(&off) {
                    v.push(CtxField { off, size: 8 });
                } else if off == SKB_TSTAMP_TYPE {
                    v.push(CtxField { off, size: 1 });
                } else if !in_pointer && !in_u64 {
                    v.push(CtxField { off, size: 4 });
                }
                off += 4;
            }
            Some((SK_BUFF_SIZE, v))
        }
        _ => None,
    }
}

type CacheKey = (u32, Option<u32>);

static CACHE: Mutex<Option<HashMap<CacheKey, Vec<CtxField>>>> = Mutex::new(None);

/// Whether the kernel lets a program of this type read `field`.
fn readable(prog_type: u32, attach: Option<u32>, field: CtxField) -> bool {
    let size = match field.size {
        1 => SIZE_B,
        2 => SIZE_H,
        8 => SIZE_DW,
        _ => SIZE_W,
    };
    let insns = [
        RawInsn::new(CLASS_LDX | MODE_MEM | size, 0, 1, field.off as i16, 0),
        RawInsn::new(CLASS_ALU64 | ALU_MOV | SRC_K, 0, 0, 0, 0),
        RawInsn::new(CLASS_JMP | JMP_EXIT, 0, 0, 0, 0),
    ];
    let mut load = ProgLoad::new(prog_type, &insns);
    load.expected_attach_type = attach;
    load.name = "bpfrr_ctx_probe";
    load.load().is_ok()
}

/// The fields of the context a program of this type may read, asked of the
/// kernel once per (type, attach type).
fn readable_fields(prog_type: u32, attach: Option<u32>, all: &[CtxField]) -> Vec<CtxField> {
    let key = (prog_type, attach);
    if let Ok(guard) = CACHE.lock()
        && let Some(v) = guard.as_ref().and_then(|m| m.get(&key))
    {
        return v.clone();
    }
    let fields: Vec<CtxField> = all
        .iter()
        .copied()
        .filter(|f| readable(prog_type, attach, *f))
        .collect();
    if let Ok(mut guard) = CACHE.lock() {
        guard
            .get_or_insert_with(HashMap::new)
            .insert(key, fields.clone());
    }
    fields
}

/// How the entry block records the context of a program of this type.
/// `ctx_size`: the driver's size of a raw context, if it knows it.
pub fn context_capture(prog_type: u32, attach: Option<u32>, ctx_size: Option<u32>) -> CtxCapture {
    let Some(pt) = ProgType::from_number(prog_type) else {
        return CtxCapture::Bytes(ctx_size.unwrap_or(0));
    };
    if let Some((image_len, all)) = candidates(pt) {
        return CtxCapture::Fields {
            image_len,
            fields: readable_fields(prog_type, attach, &all),
        };
    }
    match pt {
        ProgType::RawTracepoint | ProgType::RawTracepointWritable => {
            // Explicit loads: the verifier checks each against the 12-arg bound.
            let n = ctx_size
                .map_or(DEFAULT_RAW_TP_ARGS, |s| s.div_ceil(8))
                .min(12);
            CtxCapture::Fields {
                image_len: n * 8,
                fields: (0..n)
                    .map(|i| CtxField {
                        off: (i * 8) as u16,
                        size: 8,
                    })
                    .collect(),
            }
        }
        ProgType::Kprobe | ProgType::PerfEvent => {
            CtxCapture::Bytes(ctx_size.unwrap_or(PT_REGS_SIZE))
        }
        ProgType::Tracepoint => CtxCapture::Bytes(ctx_size.unwrap_or(DEFAULT_TRACEPOINT_BYTES)),
        _ => CtxCapture::Bytes(ctx_size.unwrap_or(8 * DEFAULT_RAW_TP_ARGS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skb_candidates_skip_pointers_and_split_u64s() {
        let (len, v) = candidates(ProgType::SchedCls).unwrap();
        assert_eq!(len, 192);
        let offs: Vec<u16> = v.iter().map(|f| f.off).collect();
        for p in [76, 80, 140, 144, 148, 168, 172, 156, 188] {
            assert!(!offs.contains(&p), "{p}");
        }
        assert!(v.contains(&CtxField { off: 152, size: 8 }));
        assert!(v.contains(&CtxField { off: 180, size: 1 }));
        assert!(v.contains(&CtxField { off: 0, size: 4 }));
        assert!(v.contains(&CtxField { off: 16, size: 4 }));
    }
}
