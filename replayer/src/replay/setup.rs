//! Turning a trace into what the VM runs: the programs (original
//! instructions, per-subprogram stack depths, line info), the map models
//! seeded from the start snapshots, and each invocation's context.
//!
//! Context bytes agreed with the recorder: for XDP and `__sk_buff` program
//! types the raw `struct xdp_md` / `struct __sk_buff` as the uapi lays them
//! out, with the fields as the program saw them; `data`, `data_end` and
//! `data_meta` are ignored (they come from the recorded packet). For the
//! other types the raw context bytes (tracepoint record, `pt_regs`, raw
//! tracepoint / tracing `u64` arguments).

use bpfrr_trace::catalog::{MapType, ProgType};
use bpfrr_trace::isa::{Insn, RawInsn, check, encode_all};
use bpfrr_trace::trace::{Map as TraceMap, Program as TraceProgram, SnapshotTime, Trace};

use crate::env::recorded::ReplayTables;
use crate::env::{ModelConfig, ModelEnv};
use crate::limits::{MAX_CPUS, MAX_MODEL_MEMORY};
use crate::maps::{Map, MapDef};
use crate::verifier::btf_loads::btf_pointer_loads_in;
use crate::vm::{
    Context, Limits, PT_REGS_SIZE, Program, SkBuff, SkbProgram, SourceLine, XdpMd, sk_buff, xdp_md,
};

/// A trace program prepared for the VM. Returns the program and whether
/// the verifier's stack depths could be applied (one per subprogram).
pub fn vm_program(p: &TraceProgram) -> Result<(Program, bool), String> {
    let raw: Vec<RawInsn> = p.insns.iter().map(|b| RawInsn::from_bytes(*b)).collect();
    let checked = check(&raw).map_err(|e| e.to_string())?;
    let mut program = Program::new(&checked, Limits::default()).map_err(|e| e.to_string())?;
    let depths = p
        .verifier
        .as_ref()
        .map(|v| v.stack_depths.as_slice())
        .unwrap_or_default();
    let depths_known = !depths.is_empty() && program.set_stack_depths(depths).is_ok();
    program.set_lines(p.line_info.iter().map(|l| {
        (
            l.insn as usize,
            SourceLine {
                file: l.file.clone(),
                line: l.line,
                column: l.col,
                text: l.text.clone(),
            },
        )
    }));
    program.set_name(p.name.clone());
    Ok((program, depths_known))
}

/// `r0 = 0; exit`: stands in for a program the VM cannot load, so the
/// others keep their indices.
pub(crate) fn placeholder_program(name: &str) -> Program {
    use bpfrr_trace::isa::{AluOp, Operand, Width};
    let insns = [
        Insn::Alu {
            width: Width::W64,
            op: AluOp::Mov,
            dst: 0,
            src: Operand::Imm(0),
        },
        Insn::Exit,
    ];
    let bytes: Vec<u8> = encode_all(&insns)
        .iter()
        .flat_map(|r| r.to_bytes())
        .collect();
    let mut p = Program::from_bytes(&bytes).expect("a two-instruction program loads");
    p.set_name(format!("{name} (not loadable)"));
    p
}

fn u32_at(b: &[u8], off: i64) -> u32 {
    let o = off as usize;
    let mut a = [0u8; 4];
    if let Some(s) = b.get(o..o + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: i64) -> u64 {
    let o = off as usize;
    let mut a = [0u8; 8];
    if let Some(s) = b.get(o..o + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// The `xdp_md` fields that are plain values, from the recorded bytes.
pub fn xdp_md_from_bytes(b: &[u8]) -> XdpMd {
    XdpMd {
        ingress_ifindex: u32_at(b, xdp_md::INGRESS_IFINDEX),
        rx_queue_index: u32_at(b, xdp_md::RX_QUEUE_INDEX),
        egress_ifindex: u32_at(b, xdp_md::EGRESS_IFINDEX),
    }
}

/// The `__sk_buff` fields that are plain values, from the recorded bytes
/// (missing bytes read as zero).
pub fn sk_buff_from_bytes(b: &[u8]) -> SkBuff {
    use sk_buff::*;
    let u = |off| u32_at(b, off);
    SkBuff {
        pkt_type: u(PKT_TYPE),
        mark: u(MARK),
        queue_mapping: u(QUEUE_MAPPING),
        protocol: u(PROTOCOL),
        vlan_present: u(VLAN_PRESENT),
        vlan_tci: u(VLAN_TCI),
        vlan_proto: u(VLAN_PROTO),
        priority: u(PRIORITY),
        ingress_ifindex: u(INGRESS_IFINDEX),
        ifindex: u(IFINDEX),
        tc_index: u(TC_INDEX),
        cb: std::array::from_fn(|i| u(CB + 4 * i as i64)),
        hash: u(HASH),
        tc_classid: u(TC_CLASSID),
        napi_id: u(NAPI_ID),
        family: u(FAMILY),
        remote_ip4: u(REMOTE_IP4),
        local_ip4: u(LOCAL_IP4),
        remote_ip6: std::array::from_fn(|i| u(REMOTE_IP6 + 4 * i as i64)),
        local_ip6: std::array::from_fn(|i| u(LOCAL_IP6 + 4 * i as i64)),
        remote_port: u(REMOTE_PORT),
        local_port: u(LOCAL_PORT),
        tstamp: u64_at(b, TSTAMP),
        wire_len: u(WIRE_LEN),
        gso_segs: u(GSO_SEGS),
        gso_size: u(GSO_SIZE),
        tstamp_type: b.get(TSTAMP_TYPE as usize).copied().unwrap_or(0),
        hwtstamp: u64_at(b, HWTSTAMP),
    }
}

/// The context of one invocation of a program of type `prog_type` (the
/// kernel's `enum bpf_prog_type`), from the recorded bytes.
pub fn invocation_context(
    prog_type: u32,
    ctx: &[u8],
    packet: Option<&[u8]>,
    packet_meta: Option<&[u8]>,
) -> Context {
    let packet = packet.unwrap_or_default();
    let skb = |which| Context::skb(which, packet, sk_buff_from_bytes(ctx));
    let u64s = || -> Vec<u64> {
        ctx.chunks(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect()
    };
    match ProgType::from_number(prog_type) {
        Some(ProgType::Xdp) => Context::xdp(
            packet,
            packet_meta.unwrap_or_default(),
            xdp_md_from_bytes(ctx),
        ),
        Some(ProgType::SocketFilter) => skb(SkbProgram::SocketFilter),
        Some(ProgType::SchedCls | ProgType::SchedAct) => skb(SkbProgram::Tc),
        Some(ProgType::CgroupSkb) => skb(SkbProgram::CgroupSkb),
        Some(ProgType::Tracepoint) => Context::tracepoint(ctx.to_vec()),
        Some(ProgType::Kprobe) if ctx.len() == PT_REGS_SIZE => {
            let regs = u64s();
            Context::pt_regs(&std::array::from_fn(|i| regs[i]))
        }
        Some(ProgType::RawTracepoint | ProgType::RawTracepointWritable | ProgType::Tracing) => {
            Context::raw_tracepoint(&u64s())
        }
        _ => Context::raw(ctx.to_vec()),
    }
}

/// The map models at the start of the recording, the tables the replay
/// env needs, and notes on what could not be modelled.
pub fn initial_models(trace: &Trace) -> (ModelEnv, ReplayTables, Vec<String>) {
    let mut notes = Vec::new();
    let recorded_cpus = trace.meta().n_cpus.max(1);
    // Per-CPU values are kept once per CPU: a made-up CPU count must not
    // multiply them.
    let n_cpus = recorded_cpus.min(MAX_CPUS);
    if recorded_cpus > MAX_CPUS {
        notes.push(format!(
            "the trace says it was recorded on {recorded_cpus} CPUs, more than the kernel's limit of {MAX_CPUS} (NR_CPUS); per-CPU maps are modelled for {MAX_CPUS}"
        ));
    }
    let mut maps = Vec::with_capacity(trace.maps().len());
    let mut unmodelled = Vec::with_capacity(trace.maps().len());
    let mut budget_left = MAX_MODEL_MEMORY;
    for m in trace.maps() {
        match model_of(m, n_cpus, budget_left) {
            Ok(map) => {
                budget_left -= map.footprint();
                maps.push(map);
                unmodelled.push(false);
            }
            Err(why) => {
                notes.push(format!(
                    "map {} ({}): {why}; replay uses the recorded values only",
                    m.id, m.name
                ));
                maps.push(stand_in(m));
                unmodelled.push(true);
            }
        }
    }
    // Program arrays: the slots known at recording time (their snapshot
    // values are kernel file descriptors).
    for p in trace.programs() {
        for t in &p.tail_call_targets {
            if let Some(map) = maps.get_mut(t.map as usize)
                && !unmodelled[t.map as usize]
                && let Err(e) = map.seed(&t.slot.to_le_bytes(), &t.program.to_le_bytes())
            {
                notes.push(format!(
                    "map {}: tail-call slot {} cannot be set: {e}",
                    t.map, t.slot
                ));
            }
        }
    }
    let config = ModelConfig {
        n_cpus,
        ..ModelConfig::default()
    };
    let tables = ReplayTables {
        used_maps: trace
            .programs()
            .iter()
            .map(|p| p.used_maps.clone())
            .collect(),
        unmodelled,
        btf_load_insns: trace
            .programs()
            .iter()
            .map(|p| {
                let log = p.verifier.as_ref().map_or("", |v| v.log.as_str());
                let raw: Vec<RawInsn> = p.insns.iter().map(|b| RawInsn::from_bytes(*b)).collect();
                match check(&raw) {
                    Ok(c) => btf_pointer_loads_in(log, &c.insns),
                    Err(_) => Vec::new(),
                }
            })
            .collect(),
    };
    let mut model = ModelEnv::new(maps, config);
    // kfuncs are known by name: their BTF ids are the recording kernel's.
    model.set_kfunc_names(
        trace
            .programs()
            .iter()
            .flat_map(|p| p.kfuncs.iter().map(|k| (k.btf_id, k.name.clone()))),
    );
    (model, tables, notes)
}

/// A model of one trace map, seeded from its start snapshot (or, for
/// global data without one, its initial bytes), holding at most `budget`
/// bytes (the rest of the models' memory budget).
fn model_of(m: &TraceMap, n_cpus: u32, budget: u64) -> Result<Map, String> {
    let t = MapType::from_number(m.map_type)
        .ok_or_else(|| format!("map type {} is unknown to this bpfrr", m.map_type))?;
    let mut def = MapDef::new(&m.name, t, m.key_size, m.value_size, m.max_entries);
    def.flags = m.flags;
    let mut map = Map::new(def, n_cpus).map_err(|e| e.to_string())?;
    if t == MapType::ProgArray {
        return Ok(map);
    }
    let start = m.snapshots.iter().find(|s| s.when == SnapshotTime::Start);
    match start {
        Some(s) => {
            for e in &s.entries {
                let value = userspace_value(t, m.value_size, s.n_cpus, &e.value);
                map.seed(&e.key, &value)
                    .map_err(|err| format!("its start snapshot cannot be loaded ({err})"))?;
                // One entry costs at most one element (value_size x CPUs,
                // both bounded): checking after each keeps the total bounded.
                if map.footprint() > budget {
                    return Err(format!(
                        "its start snapshot needs more than the {budget} bytes left of bpfrr's limit on map memory ({MAX_MODEL_MEMORY} bytes)"
                    ));
                }
            }
        }
        None => {
            if let Some(data) = &m.initial_data {
                map.seed(&0u32.to_le_bytes(), data)
                    .map_err(|err| format!("its initial data cannot be loaded ({err})"))?;
            }
        }
    }
    Ok(map)
}

/// Snapshot values of per-CPU maps are `n_cpus` values of `value_size`
/// bytes back to back; userspace (and `Map::seed`) pads each to 8 bytes.
fn userspace_value(t: MapType, value_size: u32, n_cpus: u32, value: &[u8]) -> Vec<u8> {
    let vs = value_size as usize;
    if !t.is_per_cpu() || n_cpus <= 1 || vs == 0 || vs.is_multiple_of(8) {
        return value.to_vec();
    }
    let stride = vs.div_ceil(8) * 8;
    // Sized from the bytes at hand, never from the recorded CPU count.
    let mut out = Vec::with_capacity(value.len().div_ceil(vs) * stride);
    for chunk in value.chunks(vs) {
        out.extend_from_slice(chunk);
        out.resize(out.len() + (stride - chunk.len()), 0);
    }
    out
}

/// A map that only holds a place (so map ids keep their positions).
fn stand_in(m: &TraceMap) -> Map {
    let hash = MapDef::new(
        &m.name,
        MapType::Hash,
        m.key_size.max(1),
        m.value_size.max(1),
        m.max_entries.max(1),
    );
    Map::new(hash, 1)
        .or_else(|_| Map::new(MapDef::new(&m.name, MapType::Array, 4, 1, 1), 1))
        .expect("a one-element array is a valid map")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_snapshot_values_are_padded_for_seeding() {
        let v = userspace_value(MapType::PercpuArray, 4, 2, &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(v, vec![1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        let plain = userspace_value(MapType::Hash, 4, 2, &[1, 2, 3, 4]);
        assert_eq!(plain, vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_claimed_cpu_count_does_not_size_the_padded_value() {
        // 2 values of 4 bytes, whatever the snapshot says about CPUs.
        let v = userspace_value(MapType::PercpuArray, 4, u32::MAX, &[1; 8]);
        assert_eq!(v.len(), 16);
        assert!(v.capacity() <= 16);
    }

    #[test]
    fn a_start_snapshot_larger_than_the_budget_is_not_loaded() {
        use bpfrr_trace::trace::{MapEntry, MapSnapshot};
        // 20 entries of a 4-byte key and an 8-byte value: 240 bytes.
        let m = TraceMap {
            name: "h".into(),
            map_type: MapType::Hash.number(),
            key_size: 4,
            value_size: 8,
            max_entries: 100,
            snapshots: vec![MapSnapshot {
                when: SnapshotTime::Start,
                n_cpus: 1,
                entries: (0..20u32)
                    .map(|k| MapEntry {
                        key: k.to_le_bytes().to_vec(),
                        value: vec![0; 8],
                    })
                    .collect(),
            }],
            ..TraceMap::default()
        };
        assert_eq!(model_of(&m, 1, 240).unwrap().footprint(), 240);
        let err = model_of(&m, 1, 100).unwrap_err();
        assert_eq!(
            err,
            format!(
                "its start snapshot needs more than the 100 bytes left of bpfrr's limit on map memory ({MAX_MODEL_MEMORY} bytes)"
            )
        );
    }

    #[test]
    fn sk_buff_fields_round_trip_through_bytes() {
        let f = SkBuff {
            mark: 7,
            protocol: 0x0008,
            cb: [1, 2, 3, 4, 5],
            remote_ip6: [9, 8, 7, 6],
            tstamp: 0x1122_3344_5566_7788,
            tstamp_type: 3,
            hwtstamp: 42,
            ..SkBuff::default()
        };
        assert_eq!(sk_buff_from_bytes(&f.to_bytes()), f);
        // Short input reads as zeros instead of failing.
        assert_eq!(sk_buff_from_bytes(&[]), SkBuff::default());
    }

    #[test]
    fn xdp_md_fields_come_from_their_offsets() {
        let mut b = vec![0u8; xdp_md::SIZE];
        b[12..16].copy_from_slice(&3u32.to_le_bytes());
        b[16..20].copy_from_slice(&5u32.to_le_bytes());
        let md = xdp_md_from_bytes(&b);
        assert_eq!((md.ingress_ifindex, md.rx_queue_index), (3, 5));
    }
}
