//! Reference data for the catalogue tests: the 6.18 kernel's enums dumped
//! from its BTF (tests/catalog_data, made by tools/dump_kernel_enums.sh) and
//! the uapi header installed on this machine (linux-libc-dev, pulled in by
//! libbpf-dev, which .ci/run installs).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// `(constant, number)` pairs of one enum, in file order.
pub type Enumerators = Vec<(String, u32)>;

pub const UAPI_HEADER: &str = "/usr/include/linux/bpf.h";

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/catalog_data/linux-6.18-enums.txt")
}

/// The kernel dump: enum name -> enumerators.
pub fn kernel_enums() -> BTreeMap<String, Enumerators> {
    let path = fixture_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out: BTreeMap<String, Enumerators> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 3, "malformed line in the enum dump: {line:?}");
        let number: u32 = fields[2].parse().expect("enum value is a number");
        out.entry(fields[0].to_string())
            .or_default()
            .push((fields[1].to_string(), number));
    }
    out
}

fn uapi_header() -> String {
    std::fs::read_to_string(UAPI_HEADER).unwrap_or_else(|e| {
        panic!(
            "cannot read {UAPI_HEADER} ({e}); install linux-libc-dev (apt-get install libbpf-dev)"
        )
    })
}

/// Enumerators of `enum <name> { ... };` in the uapi header, with implicit
/// values counted and aliases (`A = B`) resolved. `__`-prefixed sentinels
/// are left out.
pub fn header_enum(name: &str) -> Enumerators {
    let text = uapi_header();
    let start = text
        .find(&format!("enum {name} {{"))
        .unwrap_or_else(|| panic!("enum {name} not found in {UAPI_HEADER}"));
    let body = &text[start..];
    let body = strip_comments(&body[body.find('{').unwrap() + 1..body.find("};").unwrap()]);
    let mut out: Enumerators = Vec::new();
    let mut next = 0u32;
    for item in body.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (ident, value) = match item.split_once('=') {
            Some((i, v)) => {
                let v = v.trim();
                let value = v
                    .parse::<u32>()
                    .ok()
                    .or_else(|| out.iter().find(|(n, _)| n == v).map(|(_, n)| *n));
                (
                    i.trim(),
                    value.unwrap_or_else(|| panic!("cannot evaluate {item:?}")),
                )
            }
            None => (item, next),
        };
        next = value + 1;
        if !ident.starts_with("__") {
            out.push((ident.to_string(), value));
        }
    }
    out
}

fn strip_comments(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("/*") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("*/").map_or("", |j| &rest[i + j + 2..]);
    }
    out.push_str(rest);
    out.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Helper names and ids from the header's `__BPF_FUNC_MAPPER` (old form,
/// `FN(name)`, ids by position) or `___BPF_FUNC_MAPPER` (`FN(name, id, ...)`).
pub fn header_helpers() -> Vec<(String, u32)> {
    let text = uapi_header();
    let start = text
        .find("#define ___BPF_FUNC_MAPPER")
        .or_else(|| text.find("#define __BPF_FUNC_MAPPER"))
        .unwrap_or_else(|| panic!("no BPF_FUNC_MAPPER in {UAPI_HEADER}"));
    let mut out = Vec::new();
    for line in text[start..].lines().skip(1) {
        let trimmed = line.trim();
        if let Some(args) = trimmed.strip_prefix("FN(") {
            let args = &args[..args.find(')').expect("FN( closes")];
            let mut parts = args.split(',').map(str::trim);
            let name = parts.next().unwrap().to_string();
            let id = match parts.next() {
                Some(id) => id.parse().expect("helper id is a number"),
                None => out.len() as u32,
            };
            out.push((name, id));
        }
        if !trimmed.ends_with('\\') {
            break;
        }
    }
    out
}
