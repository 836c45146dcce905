//! Linking one program: its instructions, every subprogram it calls or
//! takes the address of appended after it (depth-first, in first-use order,
//! as libbpf does), map references turned into `PSEUDO_MAP_FD` /
//! `PSEUDO_MAP_VALUE` loads, calls of `__ksym` kernel functions turned
//! into kfunc calls by BTF id (when the kernel's BTF is given), and
//! func/line info moved to the linked indices.

use std::collections::HashMap;

use crate::btf::{Btf, BtfExt, BtfKind, TypeData};
use crate::isa::RawInsn;
use crate::isa::opcode::{
    CLASS_JMP, CLASS_LD, JMP_CALL, MODE_IMM, PSEUDO_CALL_KFUNC, PSEUDO_CALL_LOCAL, PSEUDO_FUNC,
    PSEUDO_MAP_FD, PSEUDO_MAP_VALUE, SIZE_DW,
};

use super::elf::{R_BPF_64_32, R_BPF_64_64};
use super::{FuncInfo, LineInfo, LinkedFunction, ObjectError, ObjectFile};

const LD_IMM64: u8 = CLASS_LD | SIZE_DW | MODE_IMM;
const CALL: u8 = CLASS_JMP | JMP_CALL;

/// A function as it sits in its section (slots).
#[derive(Clone, Debug)]
pub(crate) struct FunctionLoc {
    pub name: String,
    pub section: usize,
    pub start: usize,
    pub len: usize,
}

/// The result before it is wrapped in a `LinkedProgram`.
pub(crate) struct Linked {
    pub insns: Vec<RawInsn>,
    pub functions: Vec<LinkedFunction>,
    pub func_info: Vec<FuncInfo>,
    pub line_info: Vec<LineInfo>,
    /// Each kfunc call (`__ksym` function): its instruction and the name.
    pub kfunc_calls: Vec<(usize, String)>,
}

/// What linking does with calls to kernel functions (`__ksym` kfuncs).
#[derive(Clone, Copy)]
pub(crate) enum KfuncLinking<'a> {
    /// They are an error (no kernel BTF to find their ids in).
    Refuse,
    /// Resolved by name to their BTF ids in this kernel BTF.
    Resolve(&'a [u8]),
    /// Left as kfunc calls with id 0, named in `Linked::kfunc_calls` (for
    /// listings, which need no kernel).
    Unresolved,
}

/// One function being relocated: where it came from, where it went, and how
/// far through its slots we are (an explicit stack instead of recursion, so
/// a hostile file with thousands of nested calls cannot overflow the stack).
struct Frame {
    func: usize,
    linked_start: usize,
    next: usize,
}

pub(crate) fn link(
    obj: &ObjectFile,
    sections: &HashMap<usize, Vec<RawInsn>>,
    program: usize,
    map_fds: &[i32],
    kfuncs: KfuncLinking<'_>,
) -> Result<Linked, ObjectError> {
    let mut kfunc_calls = Vec::new();
    // Parsed on the first call to a kernel function (`__ksym` kfunc).
    let mut kernel: Option<Btf> = None;
    let funcs = &obj.functions;
    let main = &funcs[program];
    let slots = |f: &FunctionLoc| -> Result<Vec<RawInsn>, ObjectError> {
        sections
            .get(&f.section)
            .and_then(|s| s.get(f.start..f.start + f.len))
            .map(<[RawInsn]>::to_vec)
            .ok_or_else(|| {
                ObjectError::Malformed(format!("function {} lies outside its section", f.name))
            })
    };
    let mut out = slots(main)?;
    let mut placed: HashMap<usize, usize> = HashMap::from([(program, 0)]);
    let mut order = vec![(program, 0usize)];
    let mut stack = vec![Frame {
        func: program,
        linked_start: 0,
        next: 0,
    }];

    while let Some(frame) = stack.last_mut() {
        let f = &funcs[frame.func];
        if frame.next >= f.len {
            stack.pop();
            continue;
        }
        let i = frame.next;
        let pc = frame.linked_start + i;
        let insn = out[pc];
        frame.next += if insn.code == LD_IMM64 { 2 } else { 1 };
        let byte_off = ((f.start + i) * RawInsn::SIZE) as u64;
        let reloc = obj
            .elf
            .relocations
            .get(&f.section)
            .and_then(|r| r.get(&byte_off))
            .copied();

        // Which function (if any) this instruction refers to, by slot in a section.
        let mut target: Option<(usize, usize)> = None;
        if insn.code == LD_IMM64 {
            let Some(rel) = reloc else { continue };
            if pc + 1 >= out.len() || pc + 1 >= frame.linked_start + f.len {
                return Err(ObjectError::Malformed(format!(
                    "{}: ld_imm64 at instruction {i} has no second slot",
                    f.name
                )));
            }
            if rel.r_type != R_BPF_64_64 {
                return Err(ObjectError::Malformed(format!(
                    "{}: unexpected relocation type {} on ld_imm64 at instruction {i}",
                    f.name, rel.r_type
                )));
            }
            let sym = obj.elf.symbols.get(&rel.symbol).ok_or_else(|| {
                ObjectError::Malformed(format!(
                    "{}: relocation names missing symbol {}",
                    f.name, rel.symbol
                ))
            })?;
            let Some(sym_section) = sym.section else {
                // An extern: a .kconfig variable becomes a value in the kconfig map;
                // a __ksym is resolved by the loader against kernel BTF (left as is).
                if let Some((index, offset)) = obj.kconfig_slot(&sym.name) {
                    let fd = map_fd(map_fds, index, &obj.maps[index].def.name)?;
                    out[pc].src = PSEUDO_MAP_VALUE;
                    out[pc].imm = fd;
                    out[pc + 1].imm = offset as i32;
                }
                continue;
            };
            let in_text = obj
                .elf
                .sections
                .get(&sym_section)
                .is_some_and(|s| s.executable);
            if in_text {
                // The address of a function (a bpf_loop callback, say).
                let byte = sym.value as i64 + insn.imm as i64;
                if byte < 0 || byte % 8 != 0 {
                    return Err(ObjectError::Malformed(format!(
                        "{}: function address at instruction {i} is not instruction-aligned",
                        f.name
                    )));
                }
                target = Some((sym_section, (byte / 8) as usize));
            } else {
                let (index, value_off) = obj.map_for_symbol(sym_section, sym.value).ok_or_else(|| {
                    ObjectError::Malformed(format!(
                        "{}: instruction {i} refers to {} in section {}, which is not a map or global data",
                        f.name,
                        if sym.name.is_empty() { "a symbol" } else { &sym.name },
                        obj.section_name(sym_section)
                    ))
                })?;
                let fd = map_fd(map_fds, index, &obj.maps[index].def.name)?;
                match value_off {
                    None => {
                        out[pc].src = PSEUDO_MAP_FD;
                        out[pc].imm = fd;
                        out[pc + 1].imm = 0;
                    }
                    Some(base) => {
                        let off = base as i64 + insn.imm as i64;
                        out[pc].src = PSEUDO_MAP_VALUE;
                        out[pc].imm = fd;
                        out[pc + 1].imm = i32::try_from(off).map_err(|_| {
                            ObjectError::Malformed(format!(
                                "{}: global data offset {off} out of range",
                                f.name
                            ))
                        })?;
                    }
                }
            }
        } else if insn.code == CALL && insn.src == PSEUDO_CALL_LOCAL {
            // A call to an extern function: a kfunc, by its BTF id in the
            // kernel's BTF (what libbpf does for `__ksym` functions).
            if let Some(rel) = reloc
                && let Some(sym) = obj.elf.symbols.get(&rel.symbol)
                && sym.section.is_none()
            {
                let bytes = match kfuncs {
                    KfuncLinking::Resolve(bytes) => bytes,
                    KfuncLinking::Unresolved => {
                        out[pc].src = PSEUDO_CALL_KFUNC;
                        out[pc].off = 0;
                        out[pc].imm = 0;
                        kfunc_calls.push((pc, sym.name.clone()));
                        continue;
                    }
                    KfuncLinking::Refuse => {
                        return Err(ObjectError::KfuncNeedsKernelBtf {
                            program: f.name.clone(),
                            insn: i,
                            kfunc: sym.name.clone(),
                        });
                    }
                };
                if kernel.is_none() {
                    kernel = Some(Btf::parse(bytes).map_err(|e| {
                        ObjectError::Malformed(format!("the kernel's BTF cannot be read: {e}"))
                    })?);
                }
                let id = kernel
                    .as_ref()
                    .and_then(|b| b.find_by_name(BtfKind::Func, &sym.name))
                    .ok_or_else(|| {
                        ObjectError::Malformed(format!(
                            "{}: instruction {i} calls the kernel function {}, which the kernel's BTF does not have",
                            f.name, sym.name
                        ))
                    })?;
                out[pc].src = PSEUDO_CALL_KFUNC;
                out[pc].off = 0;
                out[pc].imm = id as i32;
                kfunc_calls.push((pc, sym.name.clone()));
                continue;
            }
            let slot = match reloc {
                Some(rel) => {
                    if rel.r_type != R_BPF_64_32 {
                        return Err(ObjectError::Malformed(format!(
                            "{}: unexpected relocation type {} on call at instruction {i}",
                            f.name, rel.r_type
                        )));
                    }
                    let sym = obj
                        .elf
                        .symbols
                        .get(&rel.symbol)
                        .and_then(|s| Some((s.section?, s.value)));
                    let (sec, value) = sym.ok_or_else(|| {
                        ObjectError::Malformed(format!(
                            "{}: call at instruction {i} to an undefined function",
                            f.name
                        ))
                    })?;
                    (sec, value as i64 / 8 + insn.imm as i64 + 1)
                }
                None => (f.section, (f.start + i) as i64 + insn.imm as i64 + 1),
            };
            if slot.1 < 0 {
                return Err(ObjectError::Malformed(format!(
                    "{}: call at instruction {i} goes before the start of its section",
                    f.name
                )));
            }
            target = Some((slot.0, slot.1 as usize));
        }

        let Some((section, slot)) = target else {
            continue;
        };
        let callee = obj
            .functions
            .iter()
            .position(|g| g.section == section && g.start == slot)
            .ok_or_else(|| {
                ObjectError::Malformed(format!(
                    "{}: instruction {i} calls instruction {slot} of section {}, which is not the start of a function",
                    f.name,
                    obj.section_name(section)
                ))
            })?;
        let callee_start = match placed.get(&callee) {
            Some(&s) => s,
            None => {
                let s = out.len();
                out.extend(slots(&funcs[callee])?);
                placed.insert(callee, s);
                order.push((callee, s));
                stack.push(Frame {
                    func: callee,
                    linked_start: s,
                    next: 0,
                });
                s
            }
        };
        let rel = callee_start as i64 - pc as i64 - 1;
        out[pc].imm = i32::try_from(rel)
            .map_err(|_| ObjectError::Malformed("the linked program is too large".into()))?;
        if insn.code == LD_IMM64 {
            out[pc].src = PSEUDO_FUNC;
            out[pc + 1].imm = 0;
        }
    }

    let mut linked = Linked {
        insns: out,
        functions: Vec::new(),
        func_info: Vec::new(),
        line_info: Vec::new(),
        kfunc_calls,
    };
    for &(func, start) in &order {
        let f = &funcs[func];
        linked.functions.push(LinkedFunction {
            name: f.name.clone(),
            start,
            len: f.len,
        });
        if let Some(ext) = &obj.btf_ext {
            move_ext_info(obj, ext, f, start, &mut linked);
        }
    }
    linked.func_info.sort_by_key(|i| i.insn);
    linked.line_info.sort_by_key(|i| i.insn);
    Ok(linked)
}

fn map_fd(map_fds: &[i32], index: usize, name: &str) -> Result<i32, ObjectError> {
    map_fds
        .get(index)
        .copied()
        .ok_or_else(|| ObjectError::MissingMapFd {
            index,
            name: name.to_string(),
            given: map_fds.len(),
        })
}

/// Copies the func/line info records of `f` (byte offsets in its section)
/// to `linked`, as instruction indices from `start`.
fn move_ext_info(
    obj: &ObjectFile,
    ext: &BtfExt,
    f: &FunctionLoc,
    start: usize,
    linked: &mut Linked,
) {
    let section = obj.section_name(f.section);
    let range = f.start..f.start + f.len;
    let to_linked = |insn_off: u32| {
        let slot = insn_off as usize / RawInsn::SIZE;
        range.contains(&slot).then(|| start + slot - f.start)
    };
    for fi in ext.func_info.get(section).into_iter().flatten() {
        if let Some(insn) = to_linked(fi.insn_off) {
            let name = obj
                .btf
                .as_ref()
                .and_then(|b| b.type_by_id(fi.type_id))
                .filter(|t| matches!(t.data, TypeData::Func { .. }))
                .map(|t| t.name.clone())
                .unwrap_or_else(|| f.name.clone());
            linked.func_info.push(FuncInfo {
                insn,
                type_id: fi.type_id,
                name,
            });
        }
    }
    for li in ext.line_info.get(section).into_iter().flatten() {
        if let Some(insn) = to_linked(li.insn_off) {
            linked.line_info.push(LineInfo {
                insn,
                file: li.file.clone(),
                line: li.line,
                col: li.col,
                text: li.text.clone(),
            });
        }
    }
}
