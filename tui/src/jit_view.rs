//! The JIT view: for each BPF instruction of the original program, the
//! native instructions the kernel's JIT made of it, disassembled with
//! capstone (Intel syntax, like `bpftool prog dump jited`).
//!
//! Which bytes belong to which instruction is `bpfrr_replayer::jit` (pure
//! data, exact from the kernel's per-instruction table; see its docs). This
//! module adds the disassembler. Capstone is a C library (the `capstone`
//! crate builds its bundled C source with `cc`, no system package); it lives
//! here, in the binary crate, so the replayer stays pure Rust for every
//! consumer (tests, fuzzing, benches) that does not print native code.
//!
//! API for the UI: [`JitView::new`] once per program, then
//! [`JitView::for_insn`] per selected instruction; [`jit_for`] does both.

use std::fmt::Write as _;
use std::io::Read as _;
use std::ops::Range;
use std::path::Path;

use bpfrr_replayer::jit::{
    ARM64_REGS, Fate, JitError, JitMap, Precision, X86_64_REGS, map_program,
};
use bpfrr_trace::isa::{DisasmOptions, RawInsn, decode, format_insn};
use bpfrr_trace::trace::{MAGIC, Program, Trace};
use capstone::prelude::*;

/// One native instruction of the JIT image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeInsn {
    /// Offset in the program's image (the concatenated functions).
    pub addr: u64,
    pub bytes: Vec<u8>,
    /// Intel syntax, e.g. `add rdi, 1`; `(bad)` for bytes capstone cannot decode.
    pub text: String,
}

/// A program's JIT map with every segment disassembled.
pub struct JitView {
    pub arch: String,
    pub map: JitMap,
    natives: Vec<NativeInsn>,
    /// Per segment of `map`: its instructions in `natives`.
    per_segment: Vec<Range<usize>>,
}

/// The native instructions original instruction `orig_insn` of `prog`
/// became (empty for an instruction the verifier removed). Errors are one
/// sentence (no JIT image, damaged table, older trace without the
/// per-instruction table, unknown architecture).
// The per-instruction API in one call (the UI's JIT pane keeps a `JitView` per program instead).
#[allow(dead_code)]
pub fn jit_for(prog: &Program, orig_insn: usize) -> Result<Vec<NativeInsn>, String> {
    let view = JitView::new(prog)?;
    if view.map.precision != Precision::Exact {
        return Err(NOT_EXACT.to_string());
    }
    Ok(view.for_insn(orig_insn).to_vec())
}

pub(crate) const NOT_EXACT: &str = "this trace has only the kernel's per-source-line JIT table (recorded by an older bpfrr, or from an object without BTF), so native code cannot be given per instruction; `bpfrr disasm --jited` shows it per xlated group";

impl JitView {
    pub fn new(prog: &Program) -> Result<JitView, String> {
        let map = map_program(prog).map_err(|e: JitError| e.to_string())?;
        let jit = prog.jit.as_ref().expect("map_program checked the JIT info");
        let cs = capstone_for(&jit.arch)?;
        let mut natives = Vec::new();
        let mut per_segment = Vec::with_capacity(map.segments.len());
        for s in &map.segments {
            let first = natives.len();
            disassemble(
                &cs,
                &jit.arch,
                &jit.image[s.native.clone()],
                s.native.start as u64,
                &mut natives,
            );
            per_segment.push(first..natives.len());
        }
        Ok(JitView {
            arch: jit.arch.clone(),
            map,
            natives,
            per_segment,
        })
    }

    /// The native instructions of original instruction `orig` (exact maps;
    /// the second slot of an `ld_imm64` gives its instruction's code).
    pub fn for_insn(&self, orig: usize) -> &[NativeInsn] {
        let Some(seg) = self.map.for_insn(orig) else {
            return &[];
        };
        let k = self
            .map
            .segments
            .iter()
            .position(|s| std::ptr::eq(s, seg))
            .expect("segment of this map");
        &self.natives[self.per_segment[k].clone()]
    }

    /// The native instructions of segment `k` of `self.map`.
    pub fn segment_insns(&self, k: usize) -> &[NativeInsn] {
        &self.natives[self.per_segment[k].clone()]
    }
}

fn capstone_for(arch: &str) -> Result<Capstone, String> {
    let built = match arch {
        "x86_64" => Capstone::new()
            .x86()
            .mode(arch::x86::ArchMode::Mode64)
            .syntax(arch::x86::ArchSyntax::Intel)
            .build(),
        "aarch64" => Capstone::new()
            .arm64()
            .mode(arch::arm64::ArchMode::Arm)
            .build(),
        other => {
            return Err(format!(
                "the JIT image is {other} code, which bpfrr cannot disassemble (it knows x86_64 and aarch64)"
            ));
        }
    };
    built.map_err(|e| format!("capstone could not start ({e})"))
}

/// Appends the instructions of `code` (at image offset `addr`); bytes
/// capstone cannot decode become one `(bad)` entry per byte (x86) or word
/// (arm64) and decoding resumes after them.
fn disassemble(cs: &Capstone, arch: &str, code: &[u8], addr: u64, out: &mut Vec<NativeInsn>) {
    let step = if arch == "aarch64" { 4 } else { 1 };
    let mut pos = 0usize;
    while pos < code.len() {
        let decoded = cs.disasm_all(&code[pos..], addr + pos as u64);
        let mut used = 0usize;
        if let Ok(insns) = decoded {
            for i in insns.iter() {
                let text = match (i.mnemonic(), i.op_str()) {
                    (Some(m), Some(o)) if !o.is_empty() => format!("{m} {o}"),
                    (Some(m), _) => m.to_string(),
                    _ => "(bad)".to_string(),
                };
                out.push(NativeInsn {
                    addr: i.address(),
                    bytes: i.bytes().to_vec(),
                    text,
                });
                used += i.bytes().len();
            }
        }
        pos += used;
        if pos < code.len() {
            let n = step.min(code.len() - pos);
            out.push(NativeInsn {
                addr: addr + pos as u64,
                bytes: code[pos..pos + n].to_vec(),
                text: "(bad)".to_string(),
            });
            pos += n;
        }
    }
}

/// The listing of one program: each original instruction, what the
/// verifier made of it when that differs, and its native instructions.
pub fn render(prog: &Program, helper_names: bool, source: bool) -> Result<String, String> {
    let view = JitView::new(prog)?;
    let jit = prog.jit.as_ref().expect("checked by JitView::new");
    let mut out = String::new();
    let precision = match view.map.precision {
        Precision::Exact => "native code per BPF instruction",
        Precision::XlatedGroups => "native code per group of xlated instructions (approximate)",
    };
    let _ = writeln!(
        out,
        "program {} ({}, {}-byte JIT image, {} xlated instructions; {precision}):",
        prog.name,
        view.arch,
        jit.image.len(),
        jit.xlated.len()
    );
    let regs: &[(&str, &str)] = match view.arch.as_str() {
        "x86_64" => &X86_64_REGS,
        "aarch64" => &ARM64_REGS,
        _ => &[],
    };
    if !regs.is_empty() {
        let legend: Vec<String> = regs.iter().map(|(b, n)| format!("{b}={n}")).collect();
        let _ = writeln!(out, "; registers: {}", legend.join(" "));
    }
    if view.map.precision != Precision::Exact {
        let _ = writeln!(out, "; {NOT_EXACT}");
    }
    let orig: Vec<RawInsn> = prog.insns.iter().map(|b| RawInsn::from_bytes(*b)).collect();
    let xlated: Vec<RawInsn> = jit.xlated.iter().map(|b| RawInsn::from_bytes(*b)).collect();
    let orig_opts = DisasmOptions {
        helper_names,
        label: None,
    };
    // Xlated calls hold kernel addresses, not helper ids: print numbers.
    let xlated_opts = DisasmOptions::default();
    let bpf = |insns: &[RawInsn], pc: usize, opts: &DisasmOptions| match decode(insns, pc) {
        Ok(i) => format_insn(&i, pc, opts),
        Err(e) => kernel_internal(&insns[pc]).unwrap_or_else(|| format!("<{e}>")),
    };
    let mut last_line = None;
    for (k, s) in view.map.segments.iter().enumerate() {
        match s.orig {
            Some(i) => {
                if let Some(f) = prog.func_info.iter().find(|f| f.insn as usize == i) {
                    let _ = writeln!(out, "\n<{}>:", f.name);
                }
                if source
                    && let Some(l) = prog.line_info.iter().rfind(|l| l.insn as usize <= i)
                    && l.insn as usize == i
                    && last_line != Some((l.file.as_str(), l.line))
                    && !l.text.is_empty()
                {
                    let _ = writeln!(out, "; {}", l.text.trim_end());
                    last_line = Some((l.file.as_str(), l.line));
                }
                let _ = writeln!(out, "{i:>6}: {}", bpf(&orig, i, &orig_opts));
                match s.fate {
                    Fate::Removed => {
                        let _ = writeln!(
                            out,
                            "{:>10}; removed by the verifier (dead code): no native code",
                            ""
                        );
                    }
                    Fate::Rewritten => {
                        let _ = writeln!(
                            out,
                            "{:>10}; the verifier made it {} instruction(s):",
                            "",
                            s.xlated.len()
                        );
                        xlated_lines(&mut out, &xlated, s.xlated.clone(), &bpf, &xlated_opts);
                    }
                    Fate::Kept | Fate::Unknown => {}
                }
            }
            None => xlated_lines(&mut out, &xlated, s.xlated.clone(), &bpf, &xlated_opts),
        }
        for note in &s.notes {
            if s.fate != Fate::Rewritten || !note.starts_with("the verifier") {
                let _ = writeln!(out, "{:>10}; {note}", "");
            }
        }
        for n in view.segment_insns(k) {
            let hex: Vec<String> = n.bytes.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(
                out,
                "{:>10}{:>6x}:  {:<24} {}",
                "",
                n.addr,
                hex.join(" "),
                n.text
            );
        }
    }
    Ok(out)
}

/// Instructions only the kernel writes (not in the ISA, so the decoder
/// refuses them), in bpftool's words.
fn kernel_internal(i: &RawInsn) -> Option<String> {
    const ALU64_MOV_X: u8 = 0xbf;
    /// `insn->off` of `BPF_MOV64_PERCPU_REG` (include/linux/filter.h).
    const BPF_ADDR_PERCPU: i16 = -1;
    const MODE_MASK: u8 = 0xe0;
    const MODE_PROBE_MEM: u8 = 0x20;
    const MODE_PROBE_MEMSX: u8 = 0x40;
    const MODE_PROBE_MEM32: u8 = 0xa0;
    if i.code == ALU64_MOV_X && i.off == BPF_ADDR_PERCPU {
        return Some(format!("r{} = &(void __percpu *)(r{})", i.dst, i.src));
    }
    let mode = i.code & MODE_MASK;
    if matches!(mode, MODE_PROBE_MEM | MODE_PROBE_MEMSX | MODE_PROBE_MEM32) {
        return Some(format!(
            "kernel-internal exception-handled access (opcode {:#04x}) r{}, [r{} {:+}], imm {}",
            i.code, i.dst, i.src, i.off, i.imm
        ));
    }
    None
}

fn xlated_lines(
    out: &mut String,
    xlated: &[RawInsn],
    range: Range<usize>,
    bpf: &dyn Fn(&[RawInsn], usize, &DisasmOptions) -> String,
    opts: &DisasmOptions,
) {
    let mut x = range.start;
    while x < range.end {
        let _ = writeln!(out, "{:>10}x{x:<5} {}", "", bpf(xlated, x, opts));
        x += if xlated[x].code == 0x18 { 2 } else { 1 };
    }
}

/// Whether `path` starts with the trace magic (a file `bpfrr record` made).
pub fn is_trace(path: &Path) -> bool {
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| magic == MAGIC)
}

/// `bpfrr disasm --jited TRACE [--prog NAME]`: the JIT listing of the
/// trace's programs (or of one).
pub fn render_trace(
    path: &Path,
    prog: Option<&str>,
    helper_names: bool,
    source: bool,
) -> anyhow::Result<String> {
    if !is_trace(path) {
        anyhow::bail!(
            "{} is not a bpfrr trace: --jited shows the kernel's native code recorded in a trace made by `bpfrr record` (drop --jited to disassemble a BPF object)",
            path.display()
        );
    }
    let trace = Trace::open(path)?;
    let programs: Vec<&Program> = match prog {
        Some(name) => {
            let p = trace.programs().iter().find(|p| p.name == name);
            let Some(p) = p else {
                let names: Vec<&str> = trace.programs().iter().map(|p| p.name.as_str()).collect();
                anyhow::bail!(
                    "{} has no program {name:?}; its programs: {}",
                    path.display(),
                    names.join(", ")
                );
            };
            vec![p]
        }
        None => trace.programs().iter().collect(),
    };
    let mut out = String::new();
    for (n, p) in programs.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        match render(p, helper_names, source) {
            Ok(text) => out.push_str(&text),
            Err(e) if programs.len() == 1 => anyhow::bail!("{e}"),
            Err(e) => {
                let _ = writeln!(out, "{e}");
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Program {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../samples/traces")
            .join(name);
        Trace::open(path).unwrap().programs()[0].clone()
    }

    #[test]
    fn jit_for_gives_each_kept_instruction_its_native_code() {
        let p = sample("xdp_fw.bpfrr");
        let view = JitView::new(&p).unwrap();
        let mut total = 0;
        for (k, s) in view.map.segments.iter().enumerate() {
            let n = view.segment_insns(k);
            if s.fate != Fate::Removed {
                assert!(!n.is_empty(), "{s:?}");
            }
            assert!(n.iter().all(|i| i.text != "(bad)"), "{n:?}");
            // Addresses stay inside the segment and follow each other.
            let mut at = s.native.start as u64;
            for i in n {
                assert_eq!(i.addr, at);
                at += i.bytes.len() as u64;
            }
            assert_eq!(at, s.native.end as u64);
            total += n.len();
        }
        assert_eq!(total, view.natives.len());
        let first = jit_for(&p, 0).unwrap();
        assert_eq!(first[0].addr, 0);
        assert_eq!(first, view.for_insn(0));
    }

    #[test]
    fn an_unknown_architecture_and_a_missing_image_are_sentences() {
        let mut p = sample("sock_filter.bpfrr");
        p.jit.as_mut().unwrap().arch = "riscv64".into();
        let e = JitView::new(&p).err().unwrap();
        assert!(e.contains("riscv64 code"), "{e}");
        p.jit = None;
        let e = jit_for(&p, 0).unwrap_err();
        assert!(e.contains("has no JIT image"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn undecodable_bytes_are_marked_and_skipped() {
        let cs = capstone_for("x86_64").unwrap();
        let mut out = Vec::new();
        // 0x06 is invalid in 64-bit mode; then `ret`.
        disassemble(&cs, "x86_64", &[0x06, 0xc3], 0x10, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].addr, out[0].text.as_str()), (0x10, "(bad)"));
        assert_eq!((out[1].addr, out[1].text.as_str()), (0x11, "ret"));
    }
}
