//! Map definitions: BTF-defined maps in `.maps`, legacy `struct bpf_map_def`
//! maps in `maps`, and the global-data maps libbpf makes from `.data*`,
//! `.rodata*`, `.bss*` and `.kconfig`.
//!
//! The order of `collect` is the map index used by linking (`map_fds[i]`):
//! `.maps` by offset, then legacy `maps` by offset, then global-data
//! sections in file order, then `.kconfig`.

use crate::btf::{Btf, TypeData};
use crate::catalog::MapType;

use super::elf::{ElfSymbolKind, ElfTables};
use super::{MapDef, ObjectError};

/// `BPF_F_RDONLY_PROG`: the program may only read the map (libbpf sets it on .rodata and .kconfig).
pub(crate) const BPF_F_RDONLY_PROG: u32 = 1 << 7;

/// Where a map lives in the file, so relocations can find it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MapPlace {
    /// A struct at `offset` in the ELF section `section` (.maps or maps).
    Definition { section: usize, offset: u64 },
    /// A whole global-data ELF section.
    DataSection { section: usize },
    /// The `.kconfig` extern variables (no ELF section).
    Kconfig,
}

#[derive(Clone, Debug)]
pub(crate) struct LocatedMap {
    pub def: MapDef,
    pub place: MapPlace,
}

/// Whether an ELF section of this name holds global data that libbpf turns
/// into an array map.
pub(crate) fn is_global_data(name: &str) -> bool {
    [".data", ".rodata", ".bss"]
        .iter()
        .any(|p| name == *p || name.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
}

pub(crate) fn collect(elf: &ElfTables, btf: Option<&Btf>) -> Result<Vec<LocatedMap>, ObjectError> {
    let mut maps = Vec::new();
    if let Some(section) = elf.section_by_name(".maps") {
        let btf = btf.ok_or_else(|| {
            ObjectError::Malformed(
                "the object has a .maps section but no .BTF to describe it".into(),
            )
        })?;
        for (offset, name) in symbols_by_offset(elf, section.index) {
            let def = btf_map(btf, &name)?;
            maps.push(LocatedMap {
                def,
                place: MapPlace::Definition {
                    section: section.index,
                    offset,
                },
            });
        }
    }
    if let Some(section) = elf.section_by_name("maps") {
        for (offset, name) in symbols_by_offset(elf, section.index) {
            let word = |i: u64| -> Result<u32, ObjectError> {
                let at = (offset + 4 * i) as usize;
                section
                    .data
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or_else(|| {
                        ObjectError::Malformed(format!(
                            "legacy map {name} runs past the end of the maps section"
                        ))
                    })
            };
            maps.push(LocatedMap {
                def: MapDef {
                    name: name.clone(),
                    map_type: word(0)?,
                    key_size: word(1)?,
                    value_size: word(2)?,
                    max_entries: word(3)?,
                    flags: word(4)?,
                    btf_key_type_id: 0,
                    btf_value_type_id: 0,
                    initial_data: None,
                    read_only: false,
                },
                place: MapPlace::Definition {
                    section: section.index,
                    offset,
                },
            });
        }
    }
    for section in elf.sections.values().filter(|s| is_global_data(&s.name)) {
        let read_only = section.name.starts_with(".rodata");
        let size = u32::try_from(section.size).map_err(|_| {
            ObjectError::Malformed(format!("section {} is larger than 4 GiB", section.name))
        })?;
        if size == 0 {
            continue;
        }
        // A NOBITS section's size costs no file bytes: check it before allocating.
        if size > MAX_GLOBAL_DATA {
            return Err(ObjectError::Malformed(format!(
                "section {} holds {size} bytes of global data, more than the kernel's limit of {MAX_GLOBAL_DATA} for a map value",
                section.name
            )));
        }
        let initial = if section.nobits {
            vec![0; size as usize]
        } else {
            section.data.clone()
        };
        maps.push(LocatedMap {
            def: global_data_map(&section.name, size, initial, read_only, btf),
            place: MapPlace::DataSection {
                section: section.index,
            },
        });
    }
    if let Some(size) = btf
        .and_then(|b| datasec_extent(b, ".kconfig"))
        .filter(|&s| s > 0)
    {
        if size > MAX_GLOBAL_DATA {
            return Err(ObjectError::Malformed(format!(
                "the .kconfig variables need {size} bytes, more than the kernel's limit of {MAX_GLOBAL_DATA} for a map value"
            )));
        }
        maps.push(LocatedMap {
            def: global_data_map(".kconfig", size, vec![0; size as usize], true, btf),
            place: MapPlace::Kconfig,
        });
    }
    Ok(maps)
}

/// The largest global data section (one array map value): the kernel
/// refuses array values above `KMALLOC_MAX_SIZE`, 4 MiB on x86-64.
pub(crate) const MAX_GLOBAL_DATA: u32 = 4 << 20;

fn global_data_map(
    name: &str,
    size: u32,
    initial: Vec<u8>,
    read_only: bool,
    btf: Option<&Btf>,
) -> MapDef {
    MapDef {
        name: name.to_string(),
        map_type: MapType::Array.number(),
        key_size: 4,
        value_size: size,
        max_entries: 1,
        flags: if read_only { BPF_F_RDONLY_PROG } else { 0 },
        btf_key_type_id: 0,
        btf_value_type_id: btf
            .and_then(|b| b.find_by_name(crate::btf::BtfKind::DataSec, name))
            .unwrap_or(0),
        initial_data: Some(initial),
        read_only,
    }
}

/// The size a data section's variables need (clang leaves the DATASEC size
/// 0 in objects; for `.kconfig` there is no ELF section to ask).
fn datasec_extent(btf: &Btf, name: &str) -> Option<u32> {
    let id = btf.find_by_name(crate::btf::BtfKind::DataSec, name)?;
    let TypeData::DataSec { size, vars } = &btf.type_by_id(id)?.data else {
        return None;
    };
    let vars_end = vars
        .iter()
        .map(|v| v.offset.saturating_add(v.size))
        .max()
        .unwrap_or(0);
    // Externs are laid out by the loader, not by clang: offsets may all be 0.
    let sum: u32 = vars
        .iter()
        .map(|v| v.size.checked_next_multiple_of(8).unwrap_or(u32::MAX))
        .fold(0, u32::saturating_add);
    Some((*size).max(vars_end).max(sum))
}

/// Named data symbols defined in a section, by offset (maps are variables).
fn symbols_by_offset(elf: &ElfTables, section: usize) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = elf
        .symbols
        .values()
        .filter(|s| {
            s.section == Some(section)
                && !s.name.is_empty()
                && matches!(s.kind, ElfSymbolKind::Data | ElfSymbolKind::Other)
        })
        .map(|s| (s.value, s.name.clone()))
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Reads a BTF-defined map: the VAR `name` in DATASEC `.maps`, a struct whose
/// members encode the attributes (`__uint(x, N)` is `int (*x)[N]`,
/// `__type(key, T)` is `T *key`).
fn btf_map(btf: &Btf, name: &str) -> Result<MapDef, ObjectError> {
    let bad = |what: &str| ObjectError::Malformed(format!("BTF map {name}: {what}"));
    let var = btf
        .types()
        .find(|(_, t)| t.name == name && matches!(t.data, TypeData::Var { .. }))
        .map(|(_, t)| t)
        .ok_or_else(|| bad("no BTF variable describes it"))?;
    let TypeData::Var { type_id, .. } = var.data else {
        return Err(bad("not a variable"));
    };
    let members = btf
        .members(type_id)
        .ok_or_else(|| bad("its type is not a struct"))?;
    let mut def = MapDef {
        name: name.to_string(),
        map_type: 0,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        flags: 0,
        btf_key_type_id: 0,
        btf_value_type_id: 0,
        initial_data: None,
        read_only: false,
    };
    // `int (*name)[N]` encodes N.
    let uint = |ty: u32| -> Option<u32> {
        let TypeData::Ptr { target } = btf.type_by_id(btf.resolve(ty))?.data else {
            return None;
        };
        match btf.type_by_id(btf.resolve(target))?.data {
            TypeData::Array { len, .. } => Some(len),
            _ => None,
        }
    };
    let pointee = |ty: u32| -> Option<u32> {
        match btf.type_by_id(btf.resolve(ty))?.data {
            TypeData::Ptr { target } => Some(target),
            _ => None,
        }
    };
    for m in members {
        let need_uint =
            || uint(m.type_id).ok_or_else(|| bad(&format!("member {} is not __uint(...)", m.name)));
        match m.name.as_str() {
            "type" => def.map_type = need_uint()?,
            "max_entries" => def.max_entries = need_uint()?,
            "map_flags" => def.flags = need_uint()?,
            "key_size" => def.key_size = need_uint()?,
            "value_size" => def.value_size = need_uint()?,
            "key" => {
                let t = pointee(m.type_id).ok_or_else(|| bad("key is not __type(key, ...)"))?;
                def.btf_key_type_id = t;
                def.key_size = btf.size_of(t).unwrap_or(0) as u32;
            }
            "value" => {
                let t = pointee(m.type_id).ok_or_else(|| bad("value is not __type(value, ...)"))?;
                def.btf_value_type_id = t;
                def.value_size = btf.size_of(t).unwrap_or(0) as u32;
            }
            // Map-in-map `values`, pinning, numa_node, map_extra: not needed
            // to describe or model the map.
            _ => {}
        }
    }
    // Maps of maps and prog arrays hold 4-byte ids/fds.
    if def.value_size == 0
        && members.iter().any(|m| m.name == "values")
        && let Some(t) = MapType::from_number(def.map_type)
        && matches!(
            t,
            MapType::ProgArray | MapType::ArrayOfMaps | MapType::HashOfMaps
        )
    {
        def.value_size = 4;
    }
    Ok(def)
}
