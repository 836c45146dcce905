//! CO-RE: rewriting field offsets, type ids and existence checks that the
//! program recorded against its own BTF so they match a target kernel's BTF
//! (`/sys/kernel/btf/vmlinux`). This is delegated to aya-obj's
//! `relocate_btf`, which implements libbpf's algorithm; it only patches
//! instructions in place, so we read the patched slots back into our own
//! section copies and link those.

use std::collections::HashMap;

use crate::isa::RawInsn;

use super::ObjectError;
use super::elf::{ElfSymbolKind, ElfTables};

/// The instruction slots of every text section after CO-RE against
/// `target_btf`, by ELF section index. Sections without CO-RE relocations
/// come back as they were.
pub(crate) fn relocate(
    object_bytes: &[u8],
    elf: &ElfTables,
    sections: &HashMap<usize, Vec<RawInsn>>,
    target_btf: &[u8],
) -> Result<HashMap<usize, Vec<RawInsn>>, ObjectError> {
    check_function_symbols(elf)?;
    let core_error = |what: String| ObjectError::Core(what);
    // aya-obj is given input our own reader has already accepted; still, it
    // has `todo!()`/`unwrap()` paths, and a panic there must not take down
    // the debugger: turn one into an error.
    let result = std::panic::catch_unwind(
        || -> Result<Vec<(usize, usize, Vec<RawInsn>)>, ObjectError> {
            let target = aya_obj::btf::Btf::parse(target_btf, object::Endianness::Little)
                .map_err(|e| core_error(format!("the target BTF cannot be read: {e}")))?;
            let mut obj = aya_obj::Object::parse(object_bytes)
                .map_err(|e| core_error(format!("aya-obj cannot read the object: {e}")))?;
            obj.relocate_btf(&target)
                .map_err(|e| core_error(e.to_string()))?;
            Ok(obj
                .functions
                .values()
                .map(|f| {
                    let insns = f
                        .instructions
                        .iter()
                        .map(|i| RawInsn::new(i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
                        .collect();
                    (f.section_index.0, f.section_offset / RawInsn::SIZE, insns)
                })
                .collect())
        },
    );
    let patched = match result {
        Ok(r) => r?,
        Err(_) => {
            return Err(core_error(
                "aya-obj failed on this object (internal panic)".into(),
            ));
        }
    };
    let mut out = sections.clone();
    for (section, start, insns) in patched {
        if let Some(slots) = out.get_mut(&section)
            && let Some(dst) = slots.get_mut(start..start + insns.len())
        {
            dst.copy_from_slice(&insns);
        }
    }
    Ok(out)
}

/// aya-obj cuts each function out of its section by the symbol's address
/// and size without checking them (it panics on a symbol outside its
/// section, found by the core_linker fuzz target); check them here first.
fn check_function_symbols(elf: &ElfTables) -> Result<(), ObjectError> {
    for symbol in elf.symbols.values() {
        if symbol.kind != ElfSymbolKind::Function {
            continue;
        }
        let Some(section) = symbol.section.and_then(|i| elf.sections.get(&i)) else {
            continue;
        };
        let inside = symbol
            .value
            .checked_sub(section.address)
            .and_then(|start| start.checked_add(symbol.size))
            .is_some_and(|end| end <= section.data.len() as u64)
            && symbol.value.checked_add(symbol.size).is_some();
        if !inside {
            return Err(ObjectError::Malformed(format!(
                "function `{}` (bytes {:#x}..+{:#x}) lies outside its section {} ({} bytes at {:#x})",
                symbol.name,
                symbol.value,
                symbol.size,
                section.name,
                section.data.len(),
                section.address
            )));
        }
    }
    Ok(())
}
