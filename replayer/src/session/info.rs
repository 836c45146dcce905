//! What a session knows about names and types beyond the instructions:
//! BTF, function names, map names and their key/value types, the context
//! type. The replay setup fills it from the trace; `describe_value` uses it
//! to name what a pointer points to (`pkt+14`, `fp-8`, `map_value(blocked)+4`).

use std::sync::Arc;

use bpfrr_trace::btf::Btf;

use crate::vm::{
    Frame, Memory, PacketPointers, RegionId, RegionKind, decode_code_address, ids, split_address,
};

/// A function (subprogram) of a program, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionSym {
    pub name: String,
    /// First instruction slot.
    pub start: usize,
}

/// A map's name and BTF types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    pub name: String,
    pub key_type: Option<u32>,
    pub value_type: Option<u32>,
}

/// Names and types for a session. Everything is optional: without BTF,
/// values print as integers and bytes.
#[derive(Clone, Debug, Default)]
pub struct DebugInfo {
    pub btf: Option<Arc<Btf>>,
    /// Per machine program: its functions, sorted by `start`.
    pub functions: Vec<Vec<FunctionSym>>,
    /// Per map index (the `map` of `RegionKind::Map`/`MapValue`).
    pub maps: Vec<MapInfo>,
    /// BTF type id of the context structure (`struct xdp_md`, ...).
    pub context_type: Option<u32>,
}

impl DebugInfo {
    /// The function containing slot `pc` of program `prog`.
    pub fn function_at(&self, prog: usize, pc: usize) -> Option<&FunctionSym> {
        self.functions
            .get(prog)?
            .iter()
            .rev()
            .find(|f| f.start <= pc)
    }

    /// Every (program, start) of functions called `name`.
    pub fn find_function(&self, name: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (prog, fns) in self.functions.iter().enumerate() {
            for f in fns.iter().filter(|f| f.name == name) {
                out.push((prog, f.start));
            }
        }
        out
    }

    /// A map's name, or `map N` when unknown.
    pub fn map_name(&self, map: u32) -> String {
        match self.maps.get(map as usize) {
            Some(m) if !m.name.is_empty() => m.name.clone(),
            _ => format!("map {map}"),
        }
    }

    /// Index of the map called `name`.
    pub fn find_map(&self, name: &str) -> Option<u32> {
        self.maps
            .iter()
            .position(|m| m.name == name)
            .map(|i| i as u32)
    }

    /// The BTF type the bytes of a region have, when known: map values by
    /// their map's value type, the context by the context type.
    pub fn region_type(&self, kind: &RegionKind) -> Option<u32> {
        match kind {
            RegionKind::MapValue { map, .. } | RegionKind::GlobalData { map } => {
                self.maps.get(*map as usize)?.value_type
            }
            RegionKind::Context => self.context_type,
            _ => None,
        }
    }
}

/// What a 64-bit value is, for the register pane and `print`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueDesc {
    /// Not an address of any region: a plain number.
    Scalar,
    /// An address inside (or just around) a region.
    Pointer {
        region: RegionId,
        kind: RegionKind,
        /// Offset from the region's first byte (may be negative or past the end).
        offset: i64,
        /// False when the region was freed (a dangling pointer).
        live: bool,
        /// `pkt+14`, `fp-8`, `fp[0]-16`, `ctx+4`, `map_value(blocked)+4`,
        /// `map(blocked)`, `global(.rodata)+2`, `func@12`.
        text: String,
    },
}

impl ValueDesc {
    /// The pointer text, if the value is a pointer.
    pub fn text(&self) -> Option<&str> {
        match self {
            ValueDesc::Scalar => None,
            ValueDesc::Pointer { text, .. } => Some(text),
        }
    }
}

fn plus(base: String, off: i64) -> String {
    match off {
        0 => base,
        o if o > 0 => format!("{base}+{o}"),
        o => format!("{base}{o}"),
    }
}

/// Describes `value` given the machine's memory and frames (for stack
/// frames relative to their frame pointer: `fp-8` in the current frame,
/// `fp[N]-8` in frame N).
pub fn describe_value(
    value: u64,
    memory: &Memory,
    frames: &[Frame],
    info: &DebugInfo,
) -> ValueDesc {
    let (id, offset) = split_address(value);
    if id == ids::NULL || (id as usize) >= memory.region_count() {
        return ValueDesc::Scalar;
    }
    let Some(region) = memory.region(id) else {
        return ValueDesc::Scalar;
    };
    let kind = region.kind().clone();
    let live = region.live();
    let text = match &kind {
        RegionKind::Null => return ValueDesc::Scalar,
        RegionKind::Stack { frame } => {
            let depth = *frame as usize;
            let top = frames
                .get(depth)
                .map_or(region.bytes().len() as i64, |f| f.stack_size as i64);
            let base = if depth + 1 == frames.len() {
                "fp".to_string()
            } else {
                format!("fp[{depth}]")
            };
            plus(base, offset - top)
        }
        RegionKind::Context => plus("ctx".into(), offset),
        RegionKind::Packet => match memory.packet() {
            Some(PacketPointers { data, end, .. }) if value == end && end != data => {
                "pkt_end".into()
            }
            Some(PacketPointers { data, .. }) => {
                let (_, data_off) = split_address(data);
                plus("pkt".into(), offset - data_off)
            }
            None => plus("pkt".into(), offset),
        },
        RegionKind::Input => plus("mem".into(), offset),
        RegionKind::Code => match decode_code_address(value) {
            Some((prog, pc)) => match info.function_at(prog, pc) {
                Some(f) if f.start == pc => format!("&{}", f.name),
                _ => format!("func@{pc}"),
            },
            None => plus("code".into(), offset),
        },
        RegionKind::Map { map } => plus(format!("map({})", info.map_name(*map)), offset),
        RegionKind::MapValue { map, .. } => {
            plus(format!("map_value({})", info.map_name(*map)), offset)
        }
        RegionKind::GlobalData { map } => plus(format!("global({})", info.map_name(*map)), offset),
        RegionKind::RingbufRecord { map } => {
            plus(format!("ringbuf_record({})", info.map_name(*map)), offset)
        }
        RegionKind::HelperBuffer { helper } => {
            let name = bpfrr_trace::catalog::helper_name(*helper).unwrap_or("helper");
            plus(format!("{name}_buf"), offset)
        }
    };
    let text = if live { text } else { format!("freed {text}") };
    ValueDesc::Pointer {
        region: id,
        kind,
        offset,
        live,
        text,
    }
}
