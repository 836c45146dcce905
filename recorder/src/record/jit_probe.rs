//! The exact map from original instructions to native code, learnt from the
//! kernel by a second, throw-away load of the original program.
//!
//! The kernel tells where the JIT put each *line-info record*
//! (`jited_line_info`), and keeps line-info records attached to the
//! instruction they name while the verifier rewrites the program: a record
//! stays at the first instruction of the sequence that replaced its
//! instruction (`bpf_patch_insn_data` → `adjust_btf_line_info`), and goes away
//! with dead code (`bpf_adj_linfo_after_remove`). The object's own line info
//! has one record per *source line*, so the recorded original load only gives
//! line-granular offsets. This probe loads the same instructions again with
//! one synthetic record per instruction whose `line_col` holds the original
//! instruction index (the kernel never checks or changes `line_col`; the
//! string offsets are 0, the empty string every BTF has). From the probe's
//! `prog_info`: record k → (original index = `line_col`, xlated index =
//! `insn_off`, native address = `jited_line_info[k]`).
//!
//! The probe runs with the smallest log (its log is not the one the trace
//! keeps) and is closed right away. Its image is a fresh compilation of the
//! same instructions: identical code, other absolute addresses (maps, helper
//! call displacements), which is what the JIT view shows.

use std::os::fd::AsFd;

use bpfrr_trace::isa::opcode::{CLASS_LD, MODE_IMM, SIZE_DW};
use bpfrr_trace::trace::{JitInfo, NOT_XLATED};

use crate::load::{LoadedObject, LoadedProgram};
use crate::sys::{LogLevel, ProgInfo, ProgLoad, RecordTable, SysError, prog_info};

/// The program's JIT info with the exact original → xlated → native table
/// when the probe works, else the line-granular table of the recorded load
/// (`pipeline::jit_info`). None when the kernel withholds the image.
pub fn jit_info(object: &LoadedObject, program: &LoadedProgram) -> Option<JitInfo> {
    let coarse = super::pipeline::jit_info(&program.info)?;
    match load_probe(object, program)
        .ok()
        .and_then(|probe| exact_jit_info(&probe, program.linked.insns.len()))
    {
        Some(exact) => Some(exact),
        None => Some(coarse),
    }
}

/// Loads `program`'s instructions again with one line-info record per
/// instruction (line_col = instruction index) and returns what the kernel
/// says about that copy. Needs the object's BTF in the kernel.
pub fn load_probe(object: &LoadedObject, program: &LoadedProgram) -> Result<ProgInfo, SysError> {
    let btf = object.btf.as_ref().ok_or_else(|| {
        SysError::InvalidArgument("the object has no BTF to attach line info to".into())
    })?;
    let linked = &program.linked;
    let func_info: Vec<u8> = linked
        .func_info
        .iter()
        .flat_map(|f| {
            let mut rec = (f.insn as u32).to_le_bytes().to_vec();
            rec.extend(f.type_id.to_le_bytes());
            rec
        })
        .collect();
    let raw: Vec<[u8; 8]> = linked.insns.iter().map(|i| i.to_bytes()).collect();
    let line_info = per_insn_line_info(&raw);
    let mut load = ProgLoad::new(linked.prog_type, &linked.insns);
    load.name = &linked.name;
    load.license = &linked.license;
    load.expected_attach_type = linked.expected_attach_type;
    load.attach_btf_id = program.attach_btf_id;
    load.log_level = LogLevel::BRIEF;
    load.prog_btf = Some(btf.fd.as_fd());
    if !func_info.is_empty() {
        load.func_info = Some(RecordTable {
            bytes: &func_info,
            rec_size: 8,
        });
    }
    load.line_info = Some(RecordTable {
        bytes: &line_info,
        rec_size: 16,
    });
    let loaded = load.load()?;
    prog_info(&loaded.fd)
}

/// One `bpf_line_info` record (insn_off, file_name_off = 0, line_off = 0,
/// line_col = insn_off) per instruction start; the second slot of an
/// `ld_imm64` gets none (the kernel refuses a record there).
pub fn per_insn_line_info(insns: &[[u8; 8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(insns.len() * 16);
    let mut i = 0;
    while i < insns.len() {
        out.extend((i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((i as u32).to_le_bytes());
        i += if is_ld_imm64(insns[i][0]) { 2 } else { 1 };
    }
    out
}

fn is_ld_imm64(opcode: u8) -> bool {
    opcode == CLASS_LD | MODE_IMM | SIZE_DW
}

/// Builds the exact table from a probe's info: `n_orig` is the number of
/// original slots. None when the kernel gave no usable jited line table.
pub fn exact_jit_info(probe: &ProgInfo, n_orig: usize) -> Option<JitInfo> {
    if probe.jited.is_empty() || probe.jited_ksyms.is_empty() {
        return None;
    }
    let rec = probe.line_info_rec_size.max(16) as usize;
    let n_lines = probe.line_info.len() / rec;
    if n_lines == 0 || probe.jited_line_info.len() < n_lines {
        return None;
    }
    // Start of each function in the concatenated image.
    let mut func_base = Vec::with_capacity(probe.jited_ksyms.len());
    let mut acc = 0u64;
    for i in 0..probe.jited_ksyms.len() {
        func_base.push(acc);
        acc += u64::from(*probe.jited_func_lens.get(i)?);
    }
    let native_offset = |addr: u64| -> Option<u32> {
        let f = probe
            .jited_ksyms
            .iter()
            .enumerate()
            .position(|(i, start)| {
                let len = u64::from(probe.jited_func_lens[i]);
                addr >= *start && addr < start + len.max(1)
            })?;
        u32::try_from(func_base[f] + (addr - probe.jited_ksyms[f])).ok()
    };
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let mut orig_to_xlated = vec![NOT_XLATED; n_orig];
    // (xlated index, native offset) per record, in record order.
    let mut starts = Vec::with_capacity(n_lines);
    for k in 0..n_lines {
        let r = &probe.line_info[k * rec..(k + 1) * rec];
        let xlated = u32_at(r, 0);
        let orig = u32_at(r, 12) as usize;
        let native = native_offset(probe.jited_line_info[k])?;
        if orig >= n_orig || xlated as usize >= probe.xlated.len() {
            return None;
        }
        orig_to_xlated[orig] = xlated;
        starts.push((xlated as usize, native));
    }
    let mut insn_offsets = Vec::with_capacity(probe.xlated.len());
    let (mut cur, mut next) = (0u32, 0usize);
    for j in 0..probe.xlated.len() {
        while next < starts.len() && starts[next].0 <= j {
            cur = starts[next].1;
            next += 1;
        }
        insn_offsets.push(cur);
    }
    Some(JitInfo {
        arch: std::env::consts::ARCH.to_string(),
        image: probe.jited.clone(),
        insn_offsets,
        xlated: probe.xlated.iter().map(|i| i.to_bytes()).collect(),
        orig_to_xlated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_record_per_instruction_start_skipping_ld_imm64_halves() {
        let exit = [0x95, 0, 0, 0, 0, 0, 0, 0];
        let ld64 = [0x18, 1, 0, 0, 5, 0, 0, 0];
        let second = [0u8; 8];
        let recs = per_insn_line_info(&[exit, ld64, second, exit]);
        assert_eq!(recs.len(), 3 * 16);
        let insn_offs: Vec<u32> = recs
            .chunks(16)
            .map(|r| u32::from_le_bytes(r[0..4].try_into().unwrap()))
            .collect();
        assert_eq!(insn_offs, vec![0, 1, 3]);
        // line_col carries the instruction index.
        assert!(recs.chunks(16).all(|r| r[0..4] == r[12..16]));
    }

    #[test]
    fn records_become_the_original_to_xlated_table() {
        // Original: 3 slots; the verifier turned slot 1 into 2 instructions.
        let rec = |insn: u32, col: u32| {
            let mut r = insn.to_le_bytes().to_vec();
            r.extend([0; 8]);
            r.extend(col.to_le_bytes());
            r
        };
        let probe = ProgInfo {
            xlated: vec![bpfrr_trace::isa::RawInsn::from_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]); 4],
            jited: vec![0x90; 20],
            jited_ksyms: vec![0x1000],
            jited_func_lens: vec![20],
            jited_line_info: vec![0x1000, 0x1008, 0x1010],
            line_info: [rec(0, 0), rec(1, 1), rec(3, 2)].concat(),
            line_info_rec_size: 16,
            ..ProgInfo::default()
        };
        let jit = exact_jit_info(&probe, 3).unwrap();
        assert_eq!(jit.orig_to_xlated, vec![0, 1, 3]);
        assert_eq!(jit.insn_offsets, vec![0, 8, 8, 16]);
    }
}
