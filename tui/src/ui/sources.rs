//! The C source the program was built from. The file on disk is used when
//! it can be found (the path in the line info, or its name next to the
//! trace or in the current directory); otherwise the text is rebuilt from
//! the BTF line info, which holds the lines that have instructions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpfrr_trace::trace::Trace;

/// One source file.
#[derive(Clone, Debug, Default)]
pub struct SourceFile {
    /// The name as the line info gives it.
    pub name: String,
    /// Lines, 1-based line N at index N-1.
    pub lines: Vec<String>,
    /// Whether the text came from the file itself (else from line info only).
    pub from_disk: bool,
}

impl SourceFile {
    /// The file name without directories, as breakpoints accept it.
    pub fn short_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

/// Every source file the trace's line info mentions.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    pub files: Vec<SourceFile>,
}

impl Sources {
    /// Collects the sources of `trace`; `trace_path` helps find files on disk.
    pub fn from_trace(trace: &Trace, trace_path: Option<&Path>) -> Sources {
        let mut by_file: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
        for p in trace.programs() {
            for l in &p.line_info {
                by_file
                    .entry(l.file.clone())
                    .or_default()
                    .entry(l.line)
                    .or_insert_with(|| l.text.clone());
            }
        }
        let files = by_file
            .into_iter()
            .map(|(name, known)| match read_source(&name, trace_path) {
                Some(text) => SourceFile {
                    name,
                    lines: text.lines().map(|l| l.replace('\t', "    ")).collect(),
                    from_disk: true,
                },
                None => {
                    let last = known.keys().next_back().copied().unwrap_or(0) as usize;
                    let mut lines = vec![String::new(); last];
                    for (n, t) in known {
                        if n >= 1 {
                            lines[n as usize - 1] = t.replace('\t', "    ");
                        }
                    }
                    SourceFile {
                        name,
                        lines,
                        from_disk: false,
                    }
                }
            })
            .collect();
        Sources { files }
    }

    /// Index of the file called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.files.iter().position(|f| f.name == name)
    }
}

fn read_source(name: &str, trace_path: Option<&Path>) -> Option<String> {
    let p = Path::new(name);
    let base = p.file_name()?;
    let mut candidates: Vec<PathBuf> = vec![p.to_path_buf()];
    if let Some(dir) = trace_path.and_then(Path::parent) {
        candidates.push(dir.join(p));
        candidates.push(dir.join(base));
        if let Some(up) = dir.parent() {
            candidates.push(up.join(base));
        }
    }
    candidates.push(PathBuf::from(base));
    candidates
        .into_iter()
        .find_map(|c| std::fs::read_to_string(c).ok())
}
