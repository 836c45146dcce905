//! Loading the sample objects for the attach tests, and reading their maps.

use std::path::PathBuf;

use bpfrr_recorder::attach::AttachProgram;
use bpfrr_recorder::load::{LoadOptions, LoadedObject, LoadedProgram};
use bpfrr_recorder::sys::{BpfMap, LogLevel};
use bpfrr_trace::btf::{Btf, BtfKind, TypeData};

pub fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples")
}

/// Opens `samples/<name>.bpf.o` (maps created).
pub fn open_sample(name: &str) -> LoadedObject {
    let path = samples_dir().join(format!("{name}.bpf.o"));
    LoadedObject::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads one program of an object as written (brief verifier log).
pub fn load(obj: &mut LoadedObject, program: &str) -> LoadedProgram {
    let opts = LoadOptions {
        log_level: LogLevel::BRIEF,
        ..LoadOptions::default()
    };
    obj.load_program(program, &opts)
        .unwrap_or_else(|e| panic!("loading {program}: {e}"))
}

/// What the attach drivers need of a loaded program.
pub fn attach_program(p: &LoadedProgram) -> AttachProgram<'_> {
    use std::os::fd::AsFd;
    AttachProgram {
        fd: p.fd.as_fd(),
        name: &p.linked.name,
        prog_type: p.linked.prog_type,
        expected_attach_type: p.linked.expected_attach_type,
        attach_btf_id: p.info.attach_btf_id,
    }
}

/// The object's map called `name` (`.bss` for global data).
pub fn map<'a>(obj: &'a LoadedObject, name: &str) -> &'a BpfMap {
    &obj.maps
        .iter()
        .find(|m| m.def.name == name)
        .unwrap_or_else(|| panic!("no map {name}"))
        .map
}

/// Sums a u64 at `offset` of a per-CPU map's value over every CPU.
pub fn per_cpu_u64_sum(map: &BpfMap, key: u32, offset: usize) -> u64 {
    map.lookup_per_cpu(&key.to_le_bytes())
        .unwrap()
        .map_or(0, |cpus| {
            cpus.iter()
                .map(|v| u64::from_le_bytes(v[offset..offset + 8].try_into().unwrap()))
                .sum()
        })
}

/// The value of a u64 global variable in section `.bss`/`.data`.
pub fn global_u64(obj: &LoadedObject, prog: &LoadedProgram, section: &str, var: &str) -> u64 {
    let btf = Btf::parse(prog.linked.btf.as_deref().expect("object has BTF")).unwrap();
    let id = btf
        .find_by_name(BtfKind::DataSec, section)
        .unwrap_or_else(|| panic!("no DATASEC {section}"));
    let TypeData::DataSec { vars, .. } = &btf.type_by_id(id).unwrap().data else {
        panic!("{section} is not a DATASEC");
    };
    let offset = vars
        .iter()
        .find(|v| btf.type_by_id(v.type_id).is_some_and(|t| t.name == var))
        .unwrap_or_else(|| panic!("no variable {var} in {section}"))
        .offset as usize;
    let value = map(obj, section)
        .lookup(&0u32.to_le_bytes())
        .unwrap()
        .expect("global data has key 0");
    u64::from_le_bytes(value[offset..offset + 8].try_into().unwrap())
}
