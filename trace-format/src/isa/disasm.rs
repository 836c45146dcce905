//! The disassembler: one `Insn` as the text llvm-objdump-19 prints for it.
//!
//! The syntax is llvm-objdump's BPF syntax with the ALU32 register view that
//! it uses for programs built with `-mcpu=v3` or later (`llvm-objdump -d
//! --mcpu=v4`): 8/16/32-bit loads and stores name `wN` registers
//! (`w1 = *(u32 *)(r2 + 0x4)`), 32-bit atomics too. Without `--mcpu`,
//! llvm-objdump-19 prints `<unknown>` for the 32-bit fetching atomics, so the
//! ALU32 view is the only one that names every instruction.
//!
//! Where llvm-objdump-19 drops bits of an instruction or does not know it,
//! we print them rather than lose them; nothing clang emits is affected:
//! - `LD_IND` with a non-zero immediate: `r0 = *(u32 *)skb[r3 + 0x4]`
//!   (objdump shows only `skb[r3]`);
//! - `load_acquire` / `store_release` (Linux 6.15): LLVM 21's syntax,
//!   `w0 = load_acquire((u8 *)(r1 + 0x0))`, `store_release((u64 *)(r1 + 0x0), r2)`.

use super::insn::*;
use crate::catalog::helper_name;

/// How to print. `Default` is llvm-objdump's exact text with no labels.
#[derive(Clone, Copy, Default)]
pub struct DisasmOptions<'a> {
    /// Print helper names (`call bpf_map_lookup_elem`) instead of numbers — for the UI;
    /// objdump mode is false. In this mode kfunc calls say `call kfunc 0x..` and local
    /// calls get their target's label too (llvm-objdump prints neither).
    pub helper_names: bool,
    /// Names a jump/call target slot index, e.g. Some("xdp_count+0x70"); llvm-objdump
    /// prints ` <label>` after the offset.
    pub label: Option<&'a dyn Fn(usize) -> Option<String>>,
}

impl std::fmt::Debug for DisasmOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisasmOptions")
            .field("helper_names", &self.helper_names)
            .field("label", &self.label.map(|_| "<fn>"))
            .finish()
    }
}

/// Formats the instruction at slot `pc` (needed to resolve jump labels).
pub fn format_insn(insn: &Insn, pc: usize, opts: &DisasmOptions) -> String {
    match *insn {
        Insn::Alu {
            width,
            op,
            dst,
            src,
        } => {
            let d = reg(width, dst);
            let s = operand(width, src);
            match op {
                AluOp::Mov => format!("{d} = {s}"),
                _ => format!("{d} {}= {s}", alu_symbol(op)),
            }
        }
        Insn::Neg { width, dst } => {
            let d = reg(width, dst);
            format!("{d} = -{d}")
        }
        Insn::MovSx {
            width,
            dst,
            src,
            bits,
        } => format!("{} = (s{bits}){}", reg(width, dst), reg(width, src)),
        Insn::Endian { op, dst, bits } => {
            let name = match op {
                EndianOp::ToLe => "le",
                EndianOp::ToBe => "be",
                EndianOp::Swap => "bswap",
            };
            format!("r{dst} = {name}{bits} r{dst}")
        }
        Insn::Load {
            size,
            signed,
            dst,
            src,
            off,
        } => {
            // Sign-extending loads fill all 64 bits; zero-extending narrow loads
            // are 32-bit register writes in LLVM's ALU32 view.
            let (d, ty) = if signed {
                (format!("r{dst}"), format!("s{}", size.bytes() * 8))
            } else {
                (value_reg(size, dst), unsigned_type(size))
            };
            format!("{d} = *({ty} *){}", address(src, off))
        }
        Insn::Store {
            size,
            dst,
            off,
            src,
        } => {
            let value = match src {
                Operand::Reg(r) => value_reg(size, r),
                Operand::Imm(imm) => hex(imm as i64),
            };
            format!(
                "*({} *){} = {value}",
                unsigned_type(size),
                address(dst, off)
            )
        }
        Insn::Atomic {
            size,
            op,
            fetch,
            dst,
            src,
            off,
        } => format_atomic(size, op, fetch, dst, src, off),
        Insn::LoadImm64 { kind, dst, imm } => match kind {
            Imm64Kind::Imm => format!("r{dst} = {imm:#x} ll"),
            // llvm-objdump shows the pseudo source and the first slot's imm.
            _ => format!(
                "ld_pseudo r{dst}, {:#x}, {:#x}",
                super::encode::imm64_pseudo(kind),
                imm as u32
            ),
        },
        Insn::LoadPacket { size, src, imm } => {
            let ty = unsigned_type(size);
            match src {
                None => format!("r0 = *({ty} *)skb[{}]", hex(imm as i64)),
                Some(r) if imm == 0 => format!("r0 = *({ty} *)skb[r{r}]"),
                Some(r) => format!("r0 = *({ty} *)skb[r{r} {}]", signed_term(imm as i64)),
            }
        }
        Insn::Ja { off, long } => {
            let name = if long { "gotol" } else { "goto" };
            format!(
                "{name} {}{}",
                jump_offset(off as i64),
                label(opts, pc, off as i64)
            )
        }
        Insn::Jump {
            width,
            cond,
            dst,
            src,
            off,
        } => format!(
            "if {} {} {} goto {}{}",
            reg(width, dst),
            cond_symbol(cond),
            operand(width, src),
            jump_offset(off as i64),
            label(opts, pc, off as i64)
        ),
        Insn::MayGoto { off } => format!(
            "may_goto {}{}",
            jump_offset(off as i64),
            label(opts, pc, off as i64)
        ),
        Insn::Call(target) => format_call(target, pc, opts),
        Insn::Exit => "exit".to_string(),
    }
}

/// The label llvm-objdump prints for `target_slot` when the nearest symbol at or
/// before it starts at `symbol_slot`: `name`, or `name+0x28` (a byte offset).
pub fn symbol_label(name: &str, symbol_slot: usize, target_slot: usize) -> String {
    match target_slot.saturating_sub(symbol_slot) * RawInsn::SIZE {
        0 => name.to_string(),
        bytes => format!("{name}+{bytes:#x}"),
    }
}

fn format_call(target: CallTarget, pc: usize, opts: &DisasmOptions) -> String {
    match target {
        CallTarget::Helper(id) => match helper_name(id).filter(|_| opts.helper_names) {
            Some(name) => format!("call {name}"),
            None => format!("call {}", hex(id as i64)),
        },
        CallTarget::Local(off) if opts.helper_names => {
            format!("call {}{}", hex(off as i64), label(opts, pc, off as i64))
        }
        CallTarget::Local(off) => format!("call {}", hex(off as i64)),
        CallTarget::Kfunc { btf_id, module } if opts.helper_names => match module {
            0 => format!("call kfunc {}", hex(btf_id as i64)),
            m => format!("call kfunc {} (module {m})", hex(btf_id as i64)),
        },
        // llvm-objdump prints a kfunc call like a helper call.
        CallTarget::Kfunc { btf_id, .. } => format!("call {}", hex(btf_id as i64)),
        CallTarget::Reg(r) => format!("callx r{r}"),
    }
}

fn format_atomic(size: Size, op: AtomicOp, fetch: bool, dst: u8, src: u8, off: i16) -> String {
    let ty = unsigned_type(size);
    let addr = address(dst, off);
    let v = value_reg(size, src);
    let bare = address_inner(dst, off);
    match op {
        AtomicOp::Add | AtomicOp::Or | AtomicOp::And | AtomicOp::Xor => {
            let (sym, name) = match op {
                AtomicOp::Add => ("+", "add"),
                AtomicOp::Or => ("|", "or"),
                AtomicOp::And => ("&", "and"),
                _ => ("^", "xor"),
            };
            if fetch {
                format!("{v} = atomic_fetch_{name}(({ty} *){addr}, {v})")
            } else {
                format!("lock *({ty} *){addr} {sym}= {v}")
            }
        }
        AtomicOp::Xchg => match size {
            Size::DW => format!("{v} = xchg_64({bare}, {v})"),
            _ => format!("{v} = xchg32_32({bare}, {v})"),
        },
        AtomicOp::Cmpxchg => {
            let r0 = value_reg(size, 0);
            match size {
                Size::DW => format!("{r0} = cmpxchg_64({bare}, {r0}, {v})"),
                _ => format!("{r0} = cmpxchg32_32({bare}, {r0}, {v})"),
            }
        }
        // Here `dst` is the loaded register and `src` the address base.
        AtomicOp::LoadAcquire => format!(
            "{} = load_acquire(({ty} *){})",
            value_reg(size, dst),
            address(src, off)
        ),
        AtomicOp::StoreRelease => format!("store_release(({ty} *){addr}, {v})"),
    }
}

/// `r3` or `w3` by operand width.
fn reg(width: Width, r: u8) -> String {
    match width {
        Width::W32 => format!("w{r}"),
        Width::W64 => format!("r{r}"),
    }
}

/// The register holding a value of `size`: `r` for 64-bit, `w` otherwise.
fn value_reg(size: Size, r: u8) -> String {
    match size {
        Size::DW => format!("r{r}"),
        _ => format!("w{r}"),
    }
}

fn operand(width: Width, src: Operand) -> String {
    match src {
        Operand::Reg(r) => reg(width, r),
        Operand::Imm(imm) => hex(imm as i64),
    }
}

fn unsigned_type(size: Size) -> String {
    format!("u{}", size.bytes() * 8)
}

/// `(r1 + 0x8)` / `(r10 - 0x4)`.
fn address(base: u8, off: i16) -> String {
    format!("({})", address_inner(base, off))
}

fn address_inner(base: u8, off: i16) -> String {
    format!("r{base} {}", signed_term(off as i64))
}

/// `+ 0x8` / `- 0x8`, as llvm-objdump writes an offset added to a register.
fn signed_term(v: i64) -> String {
    if v < 0 {
        format!("- {:#x}", v.unsigned_abs())
    } else {
        format!("+ {v:#x}")
    }
}

/// A signed immediate in llvm-objdump's hex: `0x10`, `-0x10`.
fn hex(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// A jump offset always carries its sign: `+0x2`, `-0x6`, `+0x0`.
fn jump_offset(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("+{v:#x}")
    }
}

/// ` <label>` for the target of a jump at `pc` by `off`, when the caller names it.
fn label(opts: &DisasmOptions, pc: usize, off: i64) -> String {
    let target = pc as i64 + 1 + off;
    let (Some(name_of), Ok(target)) = (opts.label, usize::try_from(target)) else {
        return String::new();
    };
    match name_of(target) {
        Some(name) => format!(" <{name}>"),
        None => String::new(),
    }
}

fn alu_symbol(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+",
        AluOp::Sub => "-",
        AluOp::Mul => "*",
        AluOp::Div => "/",
        AluOp::SDiv => "s/",
        AluOp::Or => "|",
        AluOp::And => "&",
        AluOp::Lsh => "<<",
        AluOp::Rsh => ">>",
        AluOp::Mod => "%",
        AluOp::SMod => "s%",
        AluOp::Xor => "^",
        AluOp::Mov => "",
        AluOp::Arsh => "s>>",
    }
}

fn cond_symbol(cond: JmpCond) -> &'static str {
    match cond {
        JmpCond::Eq => "==",
        JmpCond::Gt => ">",
        JmpCond::Ge => ">=",
        JmpCond::Set => "&",
        JmpCond::Ne => "!=",
        JmpCond::SGt => "s>",
        JmpCond::SGe => "s>=",
        JmpCond::Lt => "<",
        JmpCond::Le => "<=",
        JmpCond::SLt => "s<",
        JmpCond::SLe => "s<=",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::decode::decode;

    /// Decodes `slots` at 0 and prints it in objdump mode with `f` as the only symbol.
    fn text(slots: &[RawInsn]) -> String {
        let label = |target: usize| Some(symbol_label("f", 0, target));
        let opts = DisasmOptions {
            helper_names: false,
            label: Some(&label),
        };
        format_insn(&decode(slots, 0).expect("valid"), 0, &opts)
    }

    fn one(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> String {
        text(&[RawInsn::new(code, dst, src, off, imm)])
    }

    // Each expected text is what llvm-objdump-19 -d --mcpu=v4 prints for the
    // same bytes (tests/objdump.rs checks all of them against the tool).
    #[test]
    fn prints_llvm_objdump_syntax() {
        assert_eq!(one(0x61, 2, 1, 4, 0), "w2 = *(u32 *)(r1 + 0x4)");
        assert_eq!(one(0x79, 2, 10, -8, 0), "r2 = *(u64 *)(r10 - 0x8)");
        assert_eq!(one(0x91, 1, 2, -8, 0), "r1 = *(s8 *)(r2 - 0x8)");
        assert_eq!(one(0xbc, 0, 1, 0, 0), "w0 = w1");
        assert_eq!(one(0xb7, 1, 0, 0, -5), "r1 = -0x5");
        assert_eq!(one(0x15, 0, 0, 2, 0), "if r0 == 0x0 goto +0x2 <f+0x18>");
        assert_eq!(one(0xa6, 1, 0, -3, 7), "if w1 < 0x7 goto -0x3");
        assert_eq!(one(0xdb, 0, 1, 0, 0), "lock *(u64 *)(r0 + 0x0) += r1");
        assert_eq!(
            one(0xc3, 1, 2, -16, 0x51),
            "w2 = atomic_fetch_and((u32 *)(r1 - 0x10), w2)"
        );
        assert_eq!(
            one(0xdb, 10, 0, -8, 0x01),
            "r0 = atomic_fetch_add((u64 *)(r10 - 0x8), r0)"
        );
        assert_eq!(one(0xdb, 1, 2, 0, 0xe1), "r2 = xchg_64(r1 + 0x0, r2)");
        assert_eq!(
            one(0xc3, 1, 2, 4, 0xf1),
            "w0 = cmpxchg32_32(r1 + 0x4, w0, w2)"
        );
        assert_eq!(one(0x85, 0, 0, 0, 1), "call 0x1");
        assert_eq!(one(0x85, 0, 1, 0, -1), "call -0x1");
        assert_eq!(one(0x8d, 2, 0, 0, 0), "callx r2");
        assert_eq!(one(0xdc, 0, 0, 0, 16), "r0 = be16 r0");
        assert_eq!(one(0xd7, 1, 0, 0, 32), "r1 = bswap32 r1");
        assert_eq!(one(0xbf, 1, 2, 8, 0), "r1 = (s8)r2");
        assert_eq!(one(0x06, 0, 0, 0, 0x10), "gotol +0x10 <f+0x88>");
        assert_eq!(one(0xe5, 0, 0, 3, 0), "may_goto +0x3 <f+0x20>");
        assert_eq!(one(0x30, 0, 0, 0, 12), "r0 = *(u8 *)skb[0xc]");
        assert_eq!(one(0x40, 0, 3, 0, 0), "r0 = *(u32 *)skb[r3]");
        assert_eq!(
            one(0x62, 10, 0, -4, i32::MIN),
            "*(u32 *)(r10 - 0x4) = -0x80000000"
        );
        assert_eq!(one(0x73, 10, 1, -1, 0), "*(u8 *)(r10 - 0x1) = w1");
        assert_eq!(one(0x84, 3, 0, 0, 0), "w3 = -w3");
        assert_eq!(one(0x3c, 1, 2, 1, 0), "w1 s/= w2");
        assert_eq!(one(0xcf, 1, 2, 0, 0), "r1 s>>= r2");
        assert_eq!(one(0x95, 0, 0, 0, 0), "exit");
        let tail = RawInsn::new(0, 0, 0, 0, 0);
        assert_eq!(text(&[RawInsn::new(0x18, 1, 0, 0, 0), tail]), "r1 = 0x0 ll");
        assert_eq!(
            text(&[RawInsn::new(0x18, 1, 2, 0, -2), RawInsn::new(0, 0, 0, 0, 8)]),
            "ld_pseudo r1, 0x2, 0xfffffffe"
        );
    }

    #[test]
    fn prints_what_llvm_objdump_19_cannot() {
        assert_eq!(
            one(0xd3, 0, 1, 0, 0x100),
            "w0 = load_acquire((u8 *)(r1 + 0x0))"
        );
        assert_eq!(
            one(0xdb, 1, 2, 8, 0x110),
            "store_release((u64 *)(r1 + 0x8), r2)"
        );
        assert_eq!(one(0x48, 0, 3, 0, -4), "r0 = *(u16 *)skb[r3 - 0x4]");
    }

    #[test]
    fn labels_only_targets_inside_the_program() {
        let label = |target: usize| (target < 4).then(|| format!("t{target}"));
        let opts = DisasmOptions {
            helper_names: false,
            label: Some(&label),
        };
        let ja = |off| Insn::Ja { off, long: false };
        assert_eq!(format_insn(&ja(1), 1, &opts), "goto +0x1 <t3>");
        assert_eq!(format_insn(&ja(5), 1, &opts), "goto +0x5");
        assert_eq!(format_insn(&ja(-3), 1, &opts), "goto -0x3");
        assert_eq!(
            format_insn(&ja(0), 0, &DisasmOptions::default()),
            "goto +0x0"
        );
    }

    #[test]
    fn ui_mode_names_helpers_kfuncs_and_local_callees() {
        let label = |target: usize| Some(symbol_label("sub", 10, target));
        let opts = DisasmOptions {
            helper_names: true,
            label: Some(&label),
        };
        let call = |t| format_insn(&Insn::Call(t), 5, &opts);
        assert_eq!(call(CallTarget::Helper(1)), "call bpf_map_lookup_elem");
        assert_eq!(call(CallTarget::Helper(-7)), "call -0x7");
        assert_eq!(call(CallTarget::Local(4)), "call 0x4 <sub>");
        assert_eq!(
            call(CallTarget::Kfunc {
                btf_id: 0x4d2,
                module: 0
            }),
            "call kfunc 0x4d2"
        );
        assert_eq!(
            call(CallTarget::Kfunc {
                btf_id: 0x4d2,
                module: 2
            }),
            "call kfunc 0x4d2 (module 2)"
        );
        // objdump mode prints numbers.
        let plain = DisasmOptions::default();
        assert_eq!(
            format_insn(&Insn::Call(CallTarget::Helper(1)), 0, &plain),
            "call 0x1"
        );
    }

    #[test]
    fn symbol_labels_are_byte_offsets() {
        assert_eq!(symbol_label("xdp_count", 0, 0), "xdp_count");
        assert_eq!(symbol_label("xdp_count", 0, 14), "xdp_count+0x70");
        assert_eq!(symbol_label("sub", 10, 12), "sub+0x10");
    }
}
