//! `bpfrr disasm OBJ [--prog NAME] [--helper-names] [--no-source]`: prints
//! each program of a BPF object as it will run (linked: subprograms
//! appended, map references as map indices), in llvm-objdump's syntax, with
//! the C source lines from BTF line info interleaved like `llvm-objdump -S`.
//! `bpfrr disasm --jited TRACE [--prog NAME]` shows a trace's JIT code
//! instead (`crate::jit_view`).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use bpfrr_trace::catalog::{MapType, ProgType};
use bpfrr_trace::isa::disasm::symbol_label;
use bpfrr_trace::isa::{DisasmOptions, decode, format_insn};
use bpfrr_trace::object::{LinkedProgram, ObjectFile};

#[derive(clap::Args)]
pub struct Args {
    /// The BPF object file (ELF from clang -target bpf).
    pub object: PathBuf,
    /// Only this program (default: every program in the file).
    #[arg(long = "prog", value_name = "NAME")]
    pub prog: Option<String>,
    /// Name helper calls (`call bpf_map_lookup_elem`) instead of numbering them.
    #[arg(long)]
    pub helper_names: bool,
    /// Do not interleave source lines.
    #[arg(long)]
    pub no_source: bool,
    /// The file is a trace (`bpfrr record`): show each BPF instruction with
    /// the native instructions the kernel's JIT made of it. A trace file is
    /// recognised by its magic without this flag too.
    #[arg(long)]
    pub jited: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.jited || crate::jit_view::is_trace(&args.object) {
        let prog = args.prog.as_deref();
        let text =
            crate::jit_view::render_trace(&args.object, prog, args.helper_names, !args.no_source)?;
        print!("{text}");
        return Ok(());
    }
    let bytes = std::fs::read(&args.object)
        .with_context(|| format!("cannot read {}", args.object.display()))?;
    let text = render(
        &bytes,
        args.prog.as_deref(),
        args.helper_names,
        !args.no_source,
    )
    .with_context(|| args.object.display().to_string())?;
    print!("{text}");
    Ok(())
}

/// The whole listing for an object file's bytes.
pub fn render(
    bytes: &[u8],
    prog: Option<&str>,
    helper_names: bool,
    source: bool,
) -> anyhow::Result<String> {
    let obj = ObjectFile::parse(bytes)?;
    let programs = obj.programs();
    if programs.is_empty() {
        anyhow::bail!("the object has no programs (no functions in SEC(\"...\") sections)");
    }
    let maps = obj.maps();
    // Model numbering: a map reference's immediate is the map's index.
    let map_indices: Vec<i32> = (0..maps.len() as i32).collect();
    let selected: Vec<_> = match prog {
        Some(name) => {
            // `link` reports an unknown name with the list of programs.
            vec![obj.link_for_listing(name, &map_indices)?]
        }
        None => programs
            .iter()
            .map(|p| obj.link_for_listing(&p.name, &map_indices))
            .collect::<Result<_, _>>()?,
    };

    let mut out = String::new();
    if !maps.is_empty() {
        let _ = writeln!(out, "maps (ld_imm64 map immediates are these indices):");
        for (i, m) in maps.iter().enumerate() {
            let kind = MapType::from_number(m.map_type).map_or("unknown", |t| t.name());
            let _ = writeln!(out, "  [{i}] {} ({kind})", m.name);
        }
        out.push('\n');
    }
    for (n, (linked, kfunc_calls)) in selected.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        program(&mut out, linked, kfunc_calls, helper_names, source);
    }
    Ok(out)
}

/// One program's listing; `kfunc_calls` names the kfunc calls (by
/// instruction: an object's kfuncs have no id before a kernel resolves
/// them).
fn program(
    out: &mut String,
    p: &LinkedProgram,
    kfunc_calls: &[(usize, String)],
    helper_names: bool,
    source: bool,
) {
    let kind = ProgType::from_number(p.prog_type).map_or("unknown", |t| t.name());
    let _ = write!(
        out,
        "program {} (section {}, type {kind}",
        p.name, p.section
    );
    if !p.attach_point.is_empty() {
        let _ = write!(out, ", attach {}", p.attach_point);
    }
    let _ = writeln!(out, ", {} instructions):", p.insns.len());

    let label_of = |target: usize| {
        p.functions
            .iter()
            .find(|f| (f.start..f.start + f.len).contains(&target))
            .map(|f| symbol_label(&f.name, f.start, target))
    };
    let opts = DisasmOptions {
        helper_names,
        label: Some(&label_of),
    };
    let mut lines = p.line_info.iter().peekable();
    let mut last_line: Option<(&str, u32)> = None;
    let mut pc = 0;
    while pc < p.insns.len() {
        if let Some(f) = p.functions.iter().find(|f| f.start == pc) {
            let _ = writeln!(out, "\n<{}>:", f.name);
            last_line = None;
        }
        while let Some(l) = lines.next_if(|l| l.insn <= pc) {
            let key = (l.file.as_str(), l.line);
            if source && l.insn == pc && last_line != Some(key) && !l.text.is_empty() {
                let _ = writeln!(out, "; {}", l.text);
            }
            last_line = Some(key);
        }
        let (text, width) = match decode(&p.insns, pc) {
            Ok(insn) => {
                let width = if p.insns[pc].code == LD_IMM64 { 2 } else { 1 };
                let kfunc = kfunc_calls.iter().find(|(at, _)| *at == pc);
                let text = match kfunc {
                    Some((_, name)) => format!("call {name}"),
                    None => format_insn(&insn, pc, &opts),
                };
                (text, width)
            }
            Err(e) => (format!("<{e}>"), 1),
        };
        let _ = writeln!(out, "{pc:>6}: {text}");
        pc += width;
    }
}

/// `BPF_LD | BPF_DW | BPF_IMM`: the two-slot instruction.
const LD_IMM64: u8 = 0x18;

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<(String, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples");
        let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".bpf.o"))
            .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
            .collect();
        out.sort();
        assert!(!out.is_empty(), "no samples/*.bpf.o");
        out
    }

    #[test]
    fn kfunc_calls_are_listed_by_name_without_a_kernel() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/fixtures");
        let bytes = std::fs::read(dir.join("iter_num.bpf.o")).unwrap();
        let text = render(&bytes, None, true, false).unwrap();
        assert!(text.contains("    14: call bpf_iter_num_new\n"), "{text}");
        assert!(text.contains("call bpf_iter_num_next"), "{text}");
        assert!(text.contains("call bpf_iter_num_destroy"), "{text}");
        assert!(!text.contains("kfunc"), "{text}");
        let bytes = std::fs::read(dir.join("dynptr_xdp.bpf.o")).unwrap();
        let text = render(&bytes, Some("dynptr_xdp"), true, false).unwrap();
        assert!(text.contains("call bpf_dynptr_from_xdp"), "{text}");
        // Helpers keep their names.
        assert!(text.contains("call bpf_dynptr_write"), "{text}");
    }

    #[test]
    fn lists_every_program_with_labels_and_source() {
        for (file, bytes) in samples() {
            let obj = ObjectFile::parse(&bytes).unwrap();
            let text = render(&bytes, None, false, true).unwrap();
            for p in obj.programs() {
                assert!(
                    text.contains(&format!("program {} (section {}", p.name, p.section)),
                    "{file}"
                );
                assert!(text.contains(&format!("\n<{}>:\n", p.name)), "{file}");
                let linked = obj
                    .link(&p.name, &(0..obj.maps().len() as i32).collect::<Vec<_>>())
                    .unwrap();
                // Every source line's text appears, as `; text`.
                for l in linked.line_info.iter().filter(|l| !l.text.is_empty()) {
                    assert!(
                        text.contains(&format!("; {}\n", l.text)),
                        "{file}: {}",
                        l.text
                    );
                }
                // Every subprogram gets its own label.
                for f in &linked.functions {
                    assert!(
                        text.contains(&format!("<{}>:", f.name)),
                        "{file}: {}",
                        f.name
                    );
                }
            }
            // Instruction lines are numbered from 0, one per instruction (ld_imm64 counts 2).
            assert!(text.contains("     0: "), "{file}");
            assert!(!text.contains("<unknown"), "{file}");
            let no_source = render(&bytes, None, false, false).unwrap();
            assert!(!no_source.lines().any(|l| l.starts_with("; ")), "{file}");
            let insn_lines = |t: &str| {
                t.lines()
                    .filter(|l| {
                        l.split_once(": ")
                            .is_some_and(|(pc, _)| pc.trim().parse::<usize>().is_ok())
                    })
                    .count()
            };
            assert_eq!(
                insn_lines(&no_source),
                insn_lines(&text),
                "{file}: --no-source drops only source lines"
            );
            assert!(insn_lines(&text) > 0);
        }
    }

    #[test]
    fn helper_names_and_one_program() {
        let (file, bytes) = samples().into_iter().next().unwrap();
        let obj = ObjectFile::parse(&bytes).unwrap();
        let first = obj.programs()[0].name.clone();
        let named = render(&bytes, Some(&first), true, true).unwrap();
        let numbered = render(&bytes, Some(&first), false, true).unwrap();
        assert_eq!(
            named.lines().filter(|l| l.starts_with("program ")).count(),
            1,
            "{file}"
        );
        let linked = obj
            .link(&first, &(0..obj.maps().len() as i32).collect::<Vec<_>>())
            .unwrap();
        let helper_calls = linked
            .insns
            .iter()
            .filter(|i| i.code == 0x85 && i.src == 0)
            .count();
        // Every helper call is printed once; with names, at least the common ones are named.
        assert_eq!(
            numbered.matches("\n").count(),
            named.matches("\n").count(),
            "{file}"
        );
        assert_eq!(
            named.contains("call bpf_map_lookup_elem"),
            numbered.contains("call 0x1\n"),
            "{file}"
        );
        assert!(helper_calls == 0 || named.contains("call bpf_"), "{file}");
        assert_eq!(numbered.matches("call bpf_").count(), 0, "{file}");
    }

    #[test]
    fn unknown_program_lists_the_available_ones() {
        let (_, bytes) = samples().into_iter().next().unwrap();
        let obj = ObjectFile::parse(&bytes).unwrap();
        let err = render(&bytes, Some("nope"), false, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
        for p in obj.programs() {
            assert!(err.contains(&p.name), "{err}");
        }
    }

    #[test]
    fn truncated_objects_are_one_sentence_errors() {
        for (file, bytes) in samples() {
            for cut in [
                0,
                3,
                16,
                63,
                64,
                200,
                bytes.len() / 3,
                bytes.len() / 2,
                bytes.len() - 1,
            ] {
                match render(&bytes[..cut], None, false, true) {
                    Ok(_) => {}
                    Err(e) => {
                        let msg = format!("{e:#}");
                        assert!(
                            !msg.is_empty() && !msg.contains('\n'),
                            "{file} cut {cut}: {msg}"
                        );
                    }
                }
            }
        }
        let err = render(b"not an object", None, false, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an ELF file"), "{err}");
    }
}
