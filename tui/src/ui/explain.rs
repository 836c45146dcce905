//! One plain sentence for the current instruction with its real values,
//! so a learner sees what the VM does: "load 4 bytes from the packet at
//! offset 26 (IPv4 source address 192.0.2.7) into r3".

use bpfrr_replayer::session::ValueDesc;
use bpfrr_replayer::vm::{RegionKind, split_address};
use bpfrr_trace::catalog::helper;
use bpfrr_trace::isa::{
    AluOp, AtomicOp, CallTarget, EndianOp, Imm64Kind, Insn, JmpCond, Operand, Width, branch_target,
};

use super::debuggee::{Debuggee, View, packet_offset};
use super::packet_fields;

/// The sentence for the instruction at the current position.
pub fn explain(d: &Debuggee<'_>, v: &View) -> String {
    let s = &d.session;
    if s.at_end() {
        return match d.session.end().map(|e| &e.kind) {
            Some(bpfrr_replayer::session::EndKind::Exited(r0)) => {
                format!("the program has returned {r0}; step back (S) to look at earlier steps")
            }
            Some(bpfrr_replayer::session::EndKind::Fault(f)) => {
                format!("this instruction faults, so the run ends here: {f}")
            }
            Some(bpfrr_replayer::session::EndKind::Divergence { message }) => {
                format!("the replay stops matching the recording here: {message}")
            }
            None => String::new(),
        };
    }
    let Some(insn) = v.insn else {
        return format!("there is no instruction at {}", v.pc);
    };
    let regs = s.regs();
    let r = |n: u8| regs[n as usize];
    match insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let name = reg_name(width, dst);
            let (sv, stext) = match src {
                Operand::Reg(x) => (r(x), format!("{} ({})", reg_name(width, x), value(d, r(x)))),
                Operand::Imm(i) => (i as i64 as u64, i.to_string()),
            };
            let result = alu(width, op, r(dst), sv);
            let res = match result {
                Some(x) => value(d, x),
                None => "an error (division by zero is 0 in BPF)".into(),
            };
            let w32 = if width == Width::W32 {
                " (32-bit: the upper half is cleared)"
            } else {
                ""
            };
            let cur = value(d, r(dst));
            match op {
                AluOp::Mov => match src {
                    Operand::Reg(_) => format!("copy {stext} into {name}{w32}"),
                    Operand::Imm(_) => format!("set {name} to {res}{w32}"),
                },
                _ => format!(
                    "{} {stext} {} {name}: {cur} {} {} = {res}{w32}",
                    verb(op),
                    prep(op),
                    symbol(op),
                    match src {
                        Operand::Reg(_) => value(d, sv),
                        Operand::Imm(i) => i.to_string(),
                    }
                ),
            }
        }
        Insn::Neg { width, dst } => {
            let x = r(dst);
            let n = if width == Width::W32 {
                (x as u32).wrapping_neg() as u64
            } else {
                x.wrapping_neg()
            };
            format!(
                "negate {}: -({}) = {}",
                reg_name(width, dst),
                value(d, x),
                value(d, n)
            )
        }
        Insn::MovSx {
            width,
            dst,
            src,
            bits,
        } => format!(
            "copy the low {bits} bits of r{src} ({}) into {}, extending the sign",
            value(d, r(src)),
            reg_name(width, dst)
        ),
        Insn::Endian { op, dst, bits } => {
            let x = r(dst);
            let mask = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let low = x & mask;
            let swapped = match bits {
                16 => (low as u16).swap_bytes() as u64,
                32 => (low as u32).swap_bytes() as u64,
                _ => low.swap_bytes(),
            };
            // On a little-endian machine, to-big-endian swaps and to-little truncates.
            let (what, new) = match op {
                EndianOp::ToLe => ("keep the low {bits} bits of", low),
                EndianOp::ToBe | EndianOp::Swap => {
                    ("swap the byte order of the low {bits} bits of", swapped)
                }
            };
            format!(
                "{} r{dst} (network <-> host order): {:#x} -> {:#x}",
                what.replace("{bits}", &bits.to_string()),
                low,
                new
            )
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            let addr = r(src).wrapping_add(off as i64 as u64);
            let n = size.bytes();
            let loaded = read(d, addr, n);
            let sx = if signed { ", sign-extended," } else { "" };
            format!(
                "load {n} byte{} from {}{sx} into r{dst}{}",
                plural(n),
                place(d, addr, n),
                loaded.map_or_else(
                    || " (the address is not readable: this faults)".to_string(),
                    |x| format!(" -> {}", value(d, x))
                )
            )
        }
        Insn::Store {
            size,
            dst,
            off,
            src,
        } => {
            let addr = r(dst).wrapping_add(off as i64 as u64);
            let n = size.bytes();
            let what = match src {
                Operand::Reg(x) => format!("r{x} ({})", value(d, r(x))),
                Operand::Imm(i) => format!("the constant {i}"),
            };
            format!(
                "store {n} byte{} of {what} to {}",
                plural(n),
                place(d, addr, n)
            )
        }
        Insn::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => {
            let addr = r(dst).wrapping_add(off as i64 as u64);
            let n = size.bytes();
            let p = place(d, addr, n);
            let old = read(d, addr, n).map_or("?".into(), |x| value(d, x));
            let sv = value(d, r(src));
            let body = match op {
                AtomicOp::Add => {
                    format!("atomically add r{src} ({sv}) to the {n} bytes at {p} (now {old})")
                }
                AtomicOp::Or => {
                    format!("atomically OR r{src} ({sv}) into the {n} bytes at {p} (now {old})")
                }
                AtomicOp::And => {
                    format!("atomically AND r{src} ({sv}) into the {n} bytes at {p} (now {old})")
                }
                AtomicOp::Xor => {
                    format!("atomically XOR r{src} ({sv}) into the {n} bytes at {p} (now {old})")
                }
                AtomicOp::Xchg => format!(
                    "atomically exchange r{src} ({sv}) with the {n} bytes at {p} (now {old})"
                ),
                AtomicOp::Cmpxchg => format!(
                    "atomically replace the {n} bytes at {p} (now {old}) with r{src} ({sv}) if they equal r0 ({}); r0 gets the old value",
                    value(d, r(0))
                ),
                AtomicOp::LoadAcquire => {
                    format!("load {n} bytes from {p} with acquire ordering into r{src}")
                }
                AtomicOp::StoreRelease => {
                    format!("store r{src} ({sv}) to {p} with release ordering")
                }
            };
            if fetch && !matches!(op, AtomicOp::Cmpxchg | AtomicOp::Xchg) {
                format!("{body}; r{src} gets the old value")
            } else {
                body
            }
        }
        Insn::LoadImm64 { kind, dst, imm } => match kind {
            Imm64Kind::Imm => format!("set r{dst} to the 64-bit constant {}", value(d, imm)),
            Imm64Kind::MapFd | Imm64Kind::MapIdx => {
                format!(
                    "load the address of map {} into r{dst} (for map helpers)",
                    map_name(d, v.prog, kind, imm)
                )
            }
            Imm64Kind::MapValue | Imm64Kind::MapIdxValue => format!(
                "load the address of the value of map {} at offset {} into r{dst}",
                map_name(d, v.prog, kind, imm),
                imm >> 32
            ),
            Imm64Kind::Func => {
                format!("load the address of a function into r{dst} (for a callback)")
            }
            Imm64Kind::BtfId => format!(
                "load the address of a kernel variable (BTF id {}) into r{dst}",
                imm as u32
            ),
        },
        Insn::LoadPacket { size, src, imm } => {
            let n = size.bytes();
            let start = src.map_or(0, |x| r(x) as i64) + imm as i64;
            let field = s.machine().memory().packet_data().and_then(|pkt| {
                usize::try_from(start)
                    .ok()
                    .and_then(|st| packet_fields::describe(pkt, d.link, st, n))
            });
            format!(
                "load {n} byte{} from the packet at offset {start}{} in network byte order into r0",
                plural(n),
                field.map_or(String::new(), |f| format!(" ({f})"))
            )
        }
        Insn::Ja { .. } => {
            let t = branch_target(&insn, v.pc).unwrap_or(0);
            format!("jump to {}", target(d, v.prog, t))
        }
        Insn::MayGoto { .. } => {
            let t = branch_target(&insn, v.pc).unwrap_or(0);
            format!(
                "may_goto: go on to the next instruction while the loop budget lasts, then jump to {}",
                target(d, v.prog, t)
            )
        }
        Insn::Jump {
            width,
            cond,
            dst,
            src,
            off: _,
        } => {
            let a = r(dst);
            let (b, btext) = match src {
                Operand::Reg(x) => (r(x), format!("{} ({})", reg_name(width, x), value(d, r(x)))),
                Operand::Imm(i) => (i as i64 as u64, i.to_string()),
            };
            let taken = compare(width, cond, a, b);
            let t = branch_target(&insn, v.pc).unwrap_or(0);
            format!(
                "compare {} ({}) with {btext}: {} {} {} is {}, so {}",
                reg_name(width, dst),
                value(d, a),
                reg_name(width, dst),
                cond_symbol(cond),
                match src {
                    Operand::Reg(x) => reg_name(width, x),
                    Operand::Imm(i) => i.to_string(),
                },
                taken,
                if taken {
                    format!("jump to {}", target(d, v.prog, t))
                } else {
                    format!("go on to {}", v.pc + 1)
                }
            )
        }
        Insn::Call(CallTarget::Helper(id)) => {
            let Some(h) = helper(id) else {
                return format!("call helper {id}, which bpfrr does not know");
            };
            let args: Vec<String> = (0..h.args.len())
                .map(|i| format!("r{}={}", i + 1, value(d, r(i as u8 + 1))))
                .collect();
            format!(
                "call {}({}); r0 gets its result, r1-r5 are clobbered",
                h.name,
                args.join(", ")
            )
        }
        Insn::Call(CallTarget::Local(_)) => {
            let t = branch_target(&insn, v.pc).unwrap_or(0);
            format!(
                "call the function {} with r1-r5 as its arguments; it gets a fresh stack frame and r6-r9 are saved",
                target(d, v.prog, t)
            )
        }
        Insn::Call(CallTarget::Kfunc { btf_id, .. }) => {
            format!("call the kernel function with BTF id {btf_id}")
        }
        Insn::Call(CallTarget::Reg(x)) => {
            format!(
                "call the function whose address is in r{x} ({})",
                value(d, r(x))
            )
        }
        Insn::Exit => {
            let r0 = r(0);
            if s.frames().len() > 1 {
                format!(
                    "return {} from this function to its caller (r0)",
                    value(d, r0)
                )
            } else {
                match super::debuggee::verdict(d.trace, v.prog as u32, r0) {
                    Some(name) => format!("end the program, returning {r0} ({name})"),
                    None => format!("end the program, returning {}", value(d, r0)),
                }
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn reg_name(width: Width, r: u8) -> String {
    match width {
        Width::W32 => format!("w{r}"),
        Width::W64 => format!("r{r}"),
    }
}

/// A value in words: a pointer by region, small numbers in decimal, big ones in hex.
pub fn value(d: &Debuggee<'_>, x: u64) -> String {
    match d.session.describe_value(x) {
        ValueDesc::Pointer { text, .. } => text,
        ValueDesc::Scalar => {
            let sx = x as i64;
            if (-4096..=65535).contains(&sx) {
                sx.to_string()
            } else {
                format!("{x:#x}")
            }
        }
    }
}

fn read(d: &Debuggee<'_>, addr: u64, n: usize) -> Option<u64> {
    let b = d.session.machine().memory().read(addr, n).ok()?;
    let mut v = 0u64;
    for (i, x) in b.iter().take(8).enumerate() {
        v |= (*x as u64) << (8 * i);
    }
    Some(v)
}

/// Where an address is, in words, with the field it names when known.
pub fn place(d: &Debuggee<'_>, addr: u64, n: usize) -> String {
    let s = &d.session;
    let mem = s.machine().memory();
    if let Some(off) = packet_offset(s, addr) {
        let field = mem.packet_data().and_then(|pkt| {
            usize::try_from(off)
                .ok()
                .and_then(|o| packet_fields::describe(pkt, d.link, o, n))
        });
        return match field {
            Some(f) => format!("the packet at offset {off} ({f})"),
            None => format!("the packet at offset {off}"),
        };
    }
    let desc = s.describe_value(addr);
    let ValueDesc::Pointer {
        kind, offset, text, ..
    } = desc
    else {
        return format!("address {addr:#x}, which is in no region");
    };
    let (_, _) = split_address(addr);
    match &kind {
        RegionKind::Stack { .. } => format!("the stack at {text}"),
        RegionKind::Context => {
            let field = s
                .info()
                .context_type
                .and_then(|t| member_at(d, t, offset))
                .map_or(String::new(), |m| format!(" ({m})"));
            format!("the context at offset {offset}{field}")
        }
        RegionKind::MapValue { map, .. } | RegionKind::GlobalData { map } => {
            let name = s.info().map_name(*map);
            let field = s
                .info()
                .region_type(&kind)
                .and_then(|t| member_at(d, t, offset))
                .map_or(String::new(), |m| format!(" ({m})"));
            format!("the value in map {name} at offset {offset}{field}")
        }
        _ => text,
    }
}

/// `.saddr` — the name of the member of BTF struct `ty` starting at byte `offset`.
fn member_at(d: &Debuggee<'_>, ty: u32, offset: i64) -> Option<String> {
    let btf = d.session.info().btf.as_ref()?;
    let id = btf.resolve(ty);
    let members = btf.members(id)?;
    let m = members
        .iter()
        .find(|m| m.bitfield_size == 0 && (m.bit_offset / 8) as i64 == offset)?;
    let struct_name = btf.type_name(id);
    Some(format!("{struct_name}.{}", m.name))
}

fn map_name(d: &Debuggee<'_>, prog: usize, kind: Imm64Kind, imm: u64) -> String {
    let index = (imm & 0xffff_ffff) as usize;
    let id = match kind {
        Imm64Kind::MapIdx | Imm64Kind::MapIdxValue => d
            .trace
            .programs()
            .get(prog)
            .and_then(|p| p.used_maps.get(index).copied())
            .map(|x| x as usize),
        _ => Some(index),
    };
    id.and_then(|i| d.trace.maps().get(i).map(|m| m.name.clone()))
        .unwrap_or_else(|| format!("#{index}"))
}

fn target(d: &Debuggee<'_>, prog: usize, t: i64) -> String {
    match d
        .programs
        .get(prog)
        .and_then(|p| p.labels.get(&(t as usize)))
    {
        Some(l) if l != &format!("L{t}") => format!("{l} (instruction {t})"),
        _ => format!("instruction {t}"),
    }
}

fn verb(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "add",
        AluOp::Sub => "subtract",
        AluOp::Mul => "multiply by",
        AluOp::Div => "divide (unsigned) by",
        AluOp::SDiv => "divide (signed) by",
        AluOp::Mod => "take the remainder (unsigned) by",
        AluOp::SMod => "take the remainder (signed) by",
        AluOp::Or => "OR",
        AluOp::And => "AND",
        AluOp::Xor => "XOR",
        AluOp::Lsh => "shift left by",
        AluOp::Rsh => "shift right (logical) by",
        AluOp::Arsh => "shift right (arithmetic) by",
        AluOp::Mov => "copy",
    }
}

fn prep(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "to",
        AluOp::Sub => "from",
        AluOp::Or | AluOp::And | AluOp::Xor => "into",
        _ => "in",
    }
}

fn symbol(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+",
        AluOp::Sub => "-",
        AluOp::Mul => "*",
        AluOp::Div | AluOp::SDiv => "/",
        AluOp::Mod | AluOp::SMod => "%",
        AluOp::Or => "|",
        AluOp::And => "&",
        AluOp::Xor => "^",
        AluOp::Lsh => "<<",
        AluOp::Rsh => ">>",
        AluOp::Arsh => "s>>",
        AluOp::Mov => "=",
    }
}

fn cond_symbol(c: JmpCond) -> &'static str {
    match c {
        JmpCond::Eq => "==",
        JmpCond::Ne => "!=",
        JmpCond::Gt => ">",
        JmpCond::Ge => ">=",
        JmpCond::Lt => "<",
        JmpCond::Le => "<=",
        JmpCond::SGt => "s>",
        JmpCond::SGe => "s>=",
        JmpCond::SLt => "s<",
        JmpCond::SLe => "s<=",
        JmpCond::Set => "&",
    }
}

/// The ALU result as the VM computes it (division by zero gives 0, modulo by zero keeps dst).
fn alu(width: Width, op: AluOp, a: u64, b: u64) -> Option<u64> {
    if width == Width::W32 {
        let (a, b) = (a as u32, b as u32);
        let sh = b & 31;
        let x = match op {
            AluOp::Add => a.wrapping_add(b),
            AluOp::Sub => a.wrapping_sub(b),
            AluOp::Mul => a.wrapping_mul(b),
            AluOp::Div => a.checked_div(b).unwrap_or(0),
            AluOp::SDiv => (a as i32).checked_div(b as i32).unwrap_or(0) as u32,
            AluOp::Mod => a.checked_rem(b).unwrap_or(a),
            AluOp::SMod => (a as i32).checked_rem(b as i32).unwrap_or(a as i32) as u32,
            AluOp::Or => a | b,
            AluOp::And => a & b,
            AluOp::Xor => a ^ b,
            AluOp::Lsh => a << sh,
            AluOp::Rsh => a >> sh,
            AluOp::Arsh => ((a as i32) >> sh) as u32,
            AluOp::Mov => b,
        };
        return Some(x as u64);
    }
    let sh = (b & 63) as u32;
    Some(match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div => a.checked_div(b).unwrap_or(0),
        AluOp::SDiv => (a as i64).checked_div(b as i64).unwrap_or(0) as u64,
        AluOp::Mod => a.checked_rem(b).unwrap_or(a),
        AluOp::SMod => (a as i64).checked_rem(b as i64).unwrap_or(a as i64) as u64,
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => a << sh,
        AluOp::Rsh => a >> sh,
        AluOp::Arsh => ((a as i64) >> sh) as u64,
        AluOp::Mov => b,
    })
}

fn compare(width: Width, c: JmpCond, a: u64, b: u64) -> bool {
    let (a, b, sa, sb) = if width == Width::W32 {
        (
            a as u32 as u64,
            b as u32 as u64,
            a as u32 as i32 as i64,
            b as u32 as i32 as i64,
        )
    } else {
        (a, b, a as i64, b as i64)
    };
    match c {
        JmpCond::Eq => a == b,
        JmpCond::Ne => a != b,
        JmpCond::Gt => a > b,
        JmpCond::Ge => a >= b,
        JmpCond::Lt => a < b,
        JmpCond::Le => a <= b,
        JmpCond::SGt => sa > sb,
        JmpCond::SGe => sa >= sb,
        JmpCond::SLt => sa < sb,
        JmpCond::SLe => sa <= sb,
        JmpCond::Set => a & b != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alu_matches_bpf_semantics() {
        assert_eq!(alu(Width::W64, AluOp::Div, 7, 0), Some(0));
        assert_eq!(alu(Width::W64, AluOp::Mod, 7, 0), Some(7));
        assert_eq!(alu(Width::W32, AluOp::Add, u64::MAX, 1), Some(0));
        assert_eq!(
            alu(Width::W64, AluOp::Arsh, (-8i64) as u64, 1),
            Some((-4i64) as u64)
        );
        assert!(compare(Width::W32, JmpCond::SLt, 0xffff_ffff, 0));
        assert!(!compare(Width::W64, JmpCond::SLt, 0xffff_ffff, 0));
    }
}
