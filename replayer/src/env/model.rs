//! `ModelEnv`: the VM's environment implemented from models, so a program
//! runs with no recording and no kernel.
//!
//! Maps are [`Map`] models indexed by position: the object's maps are
//! linked with `map_fds = [0, 1, 2, ...]`, so an `ld_imm64` map fd is the
//! map's index. Values a program reaches through pointers (lookups, global
//! data, ring-buffer records) live in VM regions paired with the model's
//! [`ValueCell`]s: the region is the truth while a run is going on, the
//! env copies region bytes into the model before each helper call and
//! writes changed model bytes back after it, and [`ModelEnv::end_run`]
//! copies everything back at the end. A value keeps one region per run,
//! so two lookups of the same key return the same pointer, as in the kernel.
//!
//! Every helper the model implements is in [`HANDLERS`]; any other helper
//! is a fault naming it. kfuncs are known by name ([`ModelEnv::set_kfunc_names`]:
//! their BTF ids depend on the kernel); the model carries out the numeric
//! iterator ([`super::iter_num`]) and packet dynptrs ([`super::dynptr`])
//! and faults on any other.

use std::collections::HashMap;

use bpfrr_trace::catalog::{helper_by_name, helper_name};
use bpfrr_trace::isa::Imm64Kind;

use super::csum;
use super::dynptr::{self, DynptrHelper, DynptrKfunc};
use super::iter_num::{self, IterNumKfunc};
use super::printk;
use super::{Clock, MemoryImage, Prandom, Task};
use crate::limits::MAX_MODEL_MEMORY;
use crate::maps::errno::{self, E2BIG, EFAULT, EINVAL};
use crate::maps::perf::BPF_F_INDEX_MASK;
use crate::maps::{Map, MapError, MapType, Model, ValueCell};
use crate::vm::{
    Callee, Context, ContextLayout, Env, Fault, FaultKind, HelperCall, HelperOutcome, Machine,
    Memory, RegionId, RegionKind, SkbProgram, address, ids, split_address,
};

/// XDP and TC verdicts the helpers return.
const XDP_ABORTED: u64 = 0;
const XDP_REDIRECT: u64 = 4;
const TC_ACT_SHOT: u64 = 2;
const TC_ACT_REDIRECT: u64 = 7;
/// `BPF_F_INGRESS` for `bpf_redirect`; broadcast flags of `bpf_redirect_map`.
const BPF_F_INGRESS: u64 = 1;
const BPF_F_BROADCAST: u64 = 1 << 3;
const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// `BPF_F_CTXLEN_MASK` of `bpf_perf_event_output` for packet programs.
const BPF_F_CTXLEN_MASK: u64 = 0xfffff << 32;
/// `BPF_MAX_LOOPS`.
const BPF_MAX_LOOPS: u64 = 1 << 23;
/// `sizeof(struct xdp_frame)`: the start of the XDP buffer the program
/// cannot move data or data_meta into.
const XDP_FRAME_SIZE: u32 = 40;
const ETH_HLEN: u32 = 14;
const EACCES: i32 = 13;

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// The CPU the program runs on (`bpf_get_smp_processor_id`, per-CPU maps).
    pub cpu: u32,
    /// Number of possible CPUs (values per per-CPU map element).
    pub n_cpus: u32,
    pub clock: Clock,
    pub prandom_seed: u64,
    pub task: Task,
    /// What `bpf_probe_read_kernel*` can read besides the program's own memory.
    pub kernel_memory: MemoryImage,
    /// What `bpf_probe_read_user*` can read.
    pub user_memory: MemoryImage,
    /// Bytes the map models may hold in all; a helper call that leaves
    /// them holding more is a fault ([`MAX_MODEL_MEMORY`] by default).
    pub memory_budget: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            cpu: 0,
            n_cpus: 1,
            clock: Clock::default(),
            prandom_seed: 0x0062_7066_7272, // "bpfrr"
            task: Task::default(),
            kernel_memory: MemoryImage::new(),
            user_memory: MemoryImage::new(),
            memory_budget: MAX_MODEL_MEMORY,
        }
    }
}

/// Where `bpf_redirect` / `bpf_redirect_map` sent the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedirectTarget {
    /// `bpf_redirect(ifindex, flags)`.
    Ifindex { ifindex: u32, flags: u64 },
    /// `bpf_redirect_map(map, key, flags)` with the entry found.
    Map { map: u32, key: u32, flags: u64 },
}

/// Something a helper did that `bpfrr run` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelEvent {
    /// A line of `bpf_trace_printk` / `bpf_printk` / `bpf_trace_vprintk`.
    Printk(String),
    /// A map operation by a helper, with its return value.
    MapUpdate {
        map: u32,
        key: Vec<u8>,
        value: Vec<u8>,
        flags: u64,
        ret: i64,
    },
    MapDelete {
        map: u32,
        key: Vec<u8>,
        ret: i64,
    },
    MapPush {
        map: u32,
        value: Vec<u8>,
        flags: u64,
        ret: i64,
    },
    MapPop {
        map: u32,
        value: Option<Vec<u8>>,
        ret: i64,
    },
    /// LRU eviction made room for an update.
    Evicted {
        map: u32,
        key: Vec<u8>,
    },
    /// A record submitted to a ring buffer (by output or submit).
    Ringbuf {
        map: u32,
        data: Vec<u8>,
    },
    /// A `bpf_perf_event_output` record.
    Perf {
        map: u32,
        cpu: u32,
        data: Vec<u8>,
    },
    Redirect(RedirectTarget),
    /// `bpf_tail_call`: the slot and the program found there (None: fell through).
    TailCall {
        map: u32,
        index: u32,
        prog: Option<u32>,
    },
}

/// An ongoing `bpf_for_each_map_elem`.
struct ForEach {
    map: u32,
    map_addr: u64,
    ctx: u64,
    target: u64,
    items: Vec<(Vec<u8>, ValueCell)>,
    key_region: Option<RegionId>,
}

/// Per-run state: regions created for map objects and values.
#[derive(Default)]
struct RunState {
    map_regions: HashMap<u32, u64>,
    /// Value storage id -> the region that shows it.
    value_regions: HashMap<usize, (ValueCell, RegionId)>,
    for_each: Vec<ForEach>,
    redirect: Option<RedirectTarget>,
}

impl RunState {
    /// Empties the state in place: the tables keep their allocations for
    /// the next run (a run's set-up is a large share of a short run).
    #[inline]
    fn clear(&mut self) {
        // Most runs make no map regions: an empty table is skipped here
        // rather than through `clear`'s out-of-line call.
        if !self.map_regions.is_empty() {
            self.map_regions.clear();
        }
        if !self.value_regions.is_empty() {
            self.value_regions.clear();
        }
        self.for_each.clear();
        self.redirect = None;
    }
}

type Handler = fn(&mut ModelEnv, i32, &mut HelperCall<'_>) -> Result<HelperOutcome, Fault>;

/// The helpers the model implements, by kernel name (without `bpf_`).
pub const HANDLERS: &[(&str, Handler)] = &[
    ("map_lookup_elem", ModelEnv::map_lookup_elem),
    ("map_update_elem", ModelEnv::map_update_elem),
    ("map_delete_elem", ModelEnv::map_delete_elem),
    ("map_push_elem", ModelEnv::map_push_elem),
    ("map_pop_elem", ModelEnv::map_pop_elem),
    ("map_peek_elem", ModelEnv::map_peek_elem),
    ("map_lookup_percpu_elem", ModelEnv::map_lookup_percpu_elem),
    ("ktime_get_ns", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.clock.monotonic_ns()))
    }),
    ("ktime_get_boot_ns", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.clock.boot_ns()))
    }),
    ("ktime_get_coarse_ns", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.clock.coarse_ns()))
    }),
    ("ktime_get_tai_ns", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.clock.tai_ns()))
    }),
    ("jiffies64", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.clock.jiffies()))
    }),
    ("get_prandom_u32", |e, _, _| {
        Ok(HelperOutcome::Return(e.rng.next_u32() as u64))
    }),
    ("get_smp_processor_id", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.cpu as u64))
    }),
    ("get_numa_node_id", |_, _, _| Ok(HelperOutcome::Return(0))),
    ("get_current_pid_tgid", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.task.pid_tgid()))
    }),
    ("get_current_uid_gid", |e, _, _| {
        Ok(HelperOutcome::Return(e.config.task.uid_gid()))
    }),
    ("get_current_comm", ModelEnv::get_current_comm),
    ("trace_printk", ModelEnv::trace_printk),
    ("trace_vprintk", ModelEnv::trace_vprintk),
    ("snprintf", ModelEnv::snprintf),
    ("probe_read", ModelEnv::probe_read_kernel),
    ("probe_read_kernel", ModelEnv::probe_read_kernel),
    ("probe_read_user", ModelEnv::probe_read_user),
    ("probe_read_str", ModelEnv::probe_read_kernel_str),
    ("probe_read_kernel_str", ModelEnv::probe_read_kernel_str),
    ("probe_read_user_str", ModelEnv::probe_read_user_str),
    ("xdp_load_bytes", ModelEnv::xdp_load_bytes),
    ("xdp_store_bytes", ModelEnv::xdp_store_bytes),
    ("skb_load_bytes", ModelEnv::skb_load_bytes),
    ("skb_store_bytes", ModelEnv::skb_store_bytes),
    ("l3_csum_replace", ModelEnv::l3_csum_replace),
    ("l4_csum_replace", ModelEnv::l4_csum_replace),
    ("csum_diff", ModelEnv::csum_diff),
    ("xdp_adjust_head", ModelEnv::xdp_adjust_head),
    ("xdp_adjust_tail", ModelEnv::xdp_adjust_tail),
    ("xdp_adjust_meta", ModelEnv::xdp_adjust_meta),
    ("redirect", ModelEnv::redirect_ifindex),
    ("redirect_map", ModelEnv::redirect_map),
    ("ringbuf_output", ModelEnv::ringbuf_output),
    ("ringbuf_reserve", ModelEnv::ringbuf_reserve),
    ("ringbuf_submit", ModelEnv::ringbuf_submit),
    ("ringbuf_discard", ModelEnv::ringbuf_discard),
    ("ringbuf_query", ModelEnv::ringbuf_query),
    ("perf_event_output", ModelEnv::perf_event_output),
    ("tail_call", ModelEnv::tail_call),
    ("loop", ModelEnv::bpf_loop),
    ("for_each_map_elem", ModelEnv::for_each_map_elem),
    ("dynptr_read", ModelEnv::dynptr_helper),
    ("dynptr_write", ModelEnv::dynptr_helper),
    ("dynptr_data", ModelEnv::dynptr_helper),
];

/// The model environment.
pub struct ModelEnv {
    maps: Vec<Map>,
    config: ModelConfig,
    rng: Prandom,
    events: Vec<ModelEvent>,
    run: RunState,
    /// Handler by helper id.
    table: Vec<Option<Handler>>,
    loop_id: i32,
    for_each_id: i32,
    /// Bytes each map model holds (`Map::footprint`) and their sum, kept
    /// up to date for the maps a helper call names.
    footprints: Vec<u64>,
    model_bytes: u64,
    /// kfunc names by BTF id (in the BTF of the kernel the program was
    /// linked or recorded against).
    kfunc_names: HashMap<i32, String>,
}

fn ret_errno(e: i32) -> HelperOutcome {
    HelperOutcome::Return(errno::ret(e))
}

fn map_ret(r: Result<(), MapError>) -> u64 {
    match r {
        Ok(()) => 0,
        Err(e) => e.ret(),
    }
}

impl ModelEnv {
    /// An environment over `maps` (index = map fd in the linked program).
    pub fn new(maps: Vec<Map>, config: ModelConfig) -> ModelEnv {
        let mut table: Vec<Option<Handler>> = Vec::new();
        let id_of = |name: &str| helper_by_name(name).map(|h| h.id as i32);
        for (name, handler) in HANDLERS {
            if let Some(id) = id_of(name) {
                let i = id as usize;
                if table.len() <= i {
                    table.resize(i + 1, None);
                }
                table[i] = Some(*handler);
            }
        }
        ModelEnv {
            rng: Prandom::new(config.prandom_seed),
            maps,
            config,
            events: Vec::new(),
            run: RunState::default(),
            table,
            loop_id: id_of("loop").unwrap_or(-1),
            for_each_id: id_of("for_each_map_elem").unwrap_or(-1),
            footprints: Vec::new(),
            model_bytes: 0,
            kfunc_names: HashMap::new(),
        }
        .counted()
    }

    /// Names the kfuncs the programs call, by BTF id (a trace's
    /// `Program::kfuncs`, or the kernel BTF the object was linked with).
    pub fn set_kfunc_names(&mut self, names: impl IntoIterator<Item = (u32, String)>) {
        self.kfunc_names
            .extend(names.into_iter().map(|(id, name)| (id as i32, name)));
    }

    /// The name of the kfunc with this BTF id, if known.
    pub fn kfunc_name(&self, btf_id: i32) -> Option<&str> {
        self.kfunc_names.get(&btf_id).map(String::as_str)
    }

    /// The numeric-iterator kfunc with this BTF id in module `module`, if it
    /// is one. The iterator is vmlinux's (module 0): a module's BTF ids are
    /// its own and may equal vmlinux ones.
    pub fn iter_num_kfunc(&self, btf_id: i32, module: i16) -> Option<IterNumKfunc> {
        if module != 0 {
            return None;
        }
        self.kfunc_name(btf_id).and_then(IterNumKfunc::from_name)
    }

    /// The packet-dynptr kfunc with this BTF id in module `module` (0:
    /// vmlinux), if it is one.
    pub fn dynptr_kfunc(&self, btf_id: i32, module: i16) -> Option<DynptrKfunc> {
        if module != 0 {
            return None;
        }
        self.kfunc_name(btf_id).and_then(DynptrKfunc::from_name)
    }

    fn counted(mut self) -> Self {
        self.recount_maps();
        self
    }

    /// Counts the bytes every map model holds again (after changes made
    /// through `maps_mut`).
    pub fn recount_maps(&mut self) {
        self.footprints.clear();
        self.footprints.extend(self.maps.iter().map(Map::footprint));
        self.model_bytes = self.footprints.iter().sum();
    }

    /// Counts the bytes map `m` holds again.
    pub fn recount_map(&mut self, m: usize) {
        if let (Some(map), Some(old)) = (self.maps.get(m), self.footprints.get_mut(m)) {
            let new = map.footprint();
            self.model_bytes = self.model_bytes - *old + new;
            *old = new;
        }
    }

    /// Bytes the map models hold, as last counted.
    pub fn model_bytes(&self) -> u64 {
        self.model_bytes
    }

    /// After helper `id`: counts the maps named by its first two arguments
    /// again and faults when the models hold more than the budget.
    fn check_memory_budget(&mut self, id: i32, call: &HelperCall<'_>) -> Result<(), Fault> {
        for n in 1..=2 {
            if let Some((_, r, 0)) = call.region_of(call.arg(n))
                && let RegionKind::Map { map } = r.kind()
            {
                self.recount_map(*map as usize);
            }
        }
        if self.model_bytes > self.config.memory_budget {
            let name = helper_name(id).unwrap_or("helper");
            return Err(call.error(
                id,
                format!(
                    "{name}: the map models would hold {} bytes, more than bpfrr's limit of {} (ModelConfig::memory_budget)",
                    self.model_bytes, self.config.memory_budget
                ),
            ));
        }
        Ok(())
    }

    pub fn maps(&self) -> &[Map] {
        &self.maps
    }

    pub fn maps_mut(&mut self) -> &mut [Map] {
        &mut self.maps
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn config_mut(&mut self) -> &mut ModelConfig {
        &mut self.config
    }

    /// Takes the events logged since the last call.
    pub fn take_events(&mut self) -> Vec<ModelEvent> {
        std::mem::take(&mut self.events)
    }

    /// Where the last run redirected the packet, if it did.
    pub fn last_redirect(&self) -> Option<&RedirectTarget> {
        self.run.redirect.as_ref()
    }

    /// Forgets the regions of the previous run. Call before each run (the
    /// machine's memory starts afresh).
    #[inline]
    pub fn begin_run(&mut self) {
        self.run.clear();
        self.recount_maps();
    }

    /// Copies what the program wrote through pointers back into the map
    /// models. Call after each run (or before looking at the maps while a
    /// run is paused).
    #[inline]
    pub fn end_run(&mut self, memory: &Memory) {
        // Checked here so that a run with no map values makes no call.
        if !self.run.value_regions.is_empty() {
            self.sync_from(memory);
        }
    }

    /// Runs program `entry` of `machine` on `ctx` with this environment:
    /// `begin_run`, the run, `end_run` (also after a fault). Returns r0.
    pub fn run(
        &mut self,
        machine: &mut Machine,
        entry: usize,
        ctx: &Context,
    ) -> Result<u64, Fault> {
        self.begin_run();
        let r = machine.start(entry, ctx).and_then(|()| machine.run(self));
        self.end_run(machine.memory());
        r
    }

    /// Region bytes -> model cells.
    fn sync_from(&self, memory: &Memory) {
        for (cell, id) in self.run.value_regions.values() {
            if let Some(r) = memory.region(*id)
                && r.live()
                && r.bytes().len() == cell.len()
                && *cell.bytes() != r.bytes()
            {
                cell.store(r.bytes());
            }
        }
    }

    /// The model cells' bytes right after `sync_from`, so that `sync_to` can
    /// tell a value the model changed from one a helper wrote through memory.
    fn cell_snapshot(&self) -> HashMap<usize, Vec<u8>> {
        self.run
            .value_regions
            .iter()
            .map(|(key, (cell, _))| (*key, cell.to_vec()))
            .collect()
    }

    /// After a helper: a value the model changed (an update in place) is
    /// copied into its region; a region the helper wrote through a pointer
    /// argument (`bpf_get_current_comm` into a ring-buffer record, say) is
    /// copied into the model, so neither side's write is lost.
    fn sync_to(
        &self,
        call: &mut HelperCall<'_>,
        before: &HashMap<usize, Vec<u8>>,
    ) -> Result<(), Fault> {
        let mut writes = Vec::new();
        for (key, (cell, id)) in &self.run.value_regions {
            if let Some(r) = call.memory().region(*id)
                && r.live()
                && r.bytes().len() == cell.len()
                && *cell.bytes() != r.bytes()
            {
                // Regions created during the call have no "before": the model's
                // value is the one to show.
                if before.get(key).is_some_and(|old| *cell.bytes() == old[..]) {
                    cell.store(r.bytes());
                } else {
                    writes.push((*id, cell.to_vec(), r.writable()));
                }
            }
        }
        for (id, bytes, writable) in writes {
            if writable {
                call.write(address(id, 0), &bytes)?;
            } else {
                call.set_region_bytes(id, bytes);
            }
        }
        Ok(())
    }

    // ---- arguments ----------------------------------------------------------

    /// The map index behind a map pointer argument.
    fn map_arg(&self, id: i32, call: &HelperCall<'_>, n: usize) -> Result<u32, Fault> {
        let addr = call.arg(n);
        if let Some((_, r, _)) = call.region_of(addr)
            && let RegionKind::Map { map } = r.kind()
            && (*map as usize) < self.maps.len()
        {
            return Ok(*map);
        }
        Err(call.error(id, format!("argument {n} ({addr:#x}) is not a map")))
    }

    /// The region that shows `cell`, created on first use.
    fn value_region(
        &mut self,
        call: &mut HelperCall<'_>,
        cell: &ValueCell,
        kind: RegionKind,
        writable: bool,
    ) -> u64 {
        if let Some((_, id)) = self.run.value_regions.get(&cell.id()) {
            return address(*id, 0);
        }
        let (id, addr) = call.alloc(kind, cell.to_vec(), writable);
        self.run.value_regions.insert(cell.id(), (cell.clone(), id));
        addr
    }

    fn helper_fault(id: i32, call: &HelperCall<'_>, what: &str) -> Fault {
        let name = helper_name(id).unwrap_or("an unknown helper");
        call.error(id, format!("{name}: {what}"))
    }

    // ---- maps -----------------------------------------------------------------

    fn map_lookup_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let cpu = self.config.cpu;
        self.lookup_on_cpu(id, call, cpu)
    }

    fn map_lookup_percpu_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let cpu = call.arg(3);
        if cpu >= self.config.n_cpus as u64 {
            return Ok(HelperOutcome::Return(0));
        }
        self.lookup_on_cpu(id, call, cpu as u32)
    }

    fn lookup_on_cpu(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
        cpu: u32,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let map = &mut self.maps[m as usize];
        let key = call
            .read(call.arg(2), map.def().key_size as usize)?
            .to_vec();
        let writable = !map.def().read_only_for_program();
        let cell = map
            .lookup(&key, cpu)
            .map_err(|e| Self::helper_fault(id, call, &e.to_string()))?;
        Ok(HelperOutcome::Return(match cell {
            None => 0,
            Some(cell) => {
                self.value_region(call, &cell, RegionKind::MapValue { map: m, key }, writable)
            }
        }))
    }

    fn map_update_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let cpu = self.config.cpu;
        let map = &mut self.maps[m as usize];
        let (ks, vs) = (map.def().key_size as usize, map.def().value_size as usize);
        let key = call.read(call.arg(2), ks)?.to_vec();
        let value = call.read(call.arg(3), vs)?.to_vec();
        let flags = call.arg(4);
        let r = map.update(&key, &value, flags, cpu);
        if let Err(MapError::Unsupported { .. }) = r {
            return Err(Self::helper_fault(id, call, &r.unwrap_err().to_string()));
        }
        if let Model::Hash(h) = map.model_mut() {
            for k in h.take_evicted() {
                self.events.push(ModelEvent::Evicted { map: m, key: k });
            }
        }
        let ret = map_ret(r);
        self.events.push(ModelEvent::MapUpdate {
            map: m,
            key,
            value,
            flags,
            ret: ret as i64,
        });
        Ok(HelperOutcome::Return(ret))
    }

    fn map_delete_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let map = &mut self.maps[m as usize];
        let key = call
            .read(call.arg(2), map.def().key_size as usize)?
            .to_vec();
        let r = map.delete(&key);
        if let Err(MapError::Unsupported { .. }) = r {
            return Err(Self::helper_fault(id, call, &r.unwrap_err().to_string()));
        }
        let ret = map_ret(r);
        self.events.push(ModelEvent::MapDelete {
            map: m,
            key,
            ret: ret as i64,
        });
        Ok(HelperOutcome::Return(ret))
    }

    fn map_push_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let map = &mut self.maps[m as usize];
        let value = call
            .read(call.arg(2), map.def().value_size as usize)?
            .to_vec();
        let flags = call.arg(3);
        let r = map.push(&value, flags);
        if let Err(MapError::Unsupported { .. }) = r {
            return Err(Self::helper_fault(id, call, &r.unwrap_err().to_string()));
        }
        let ret = map_ret(r);
        self.events.push(ModelEvent::MapPush {
            map: m,
            value,
            flags,
            ret: ret as i64,
        });
        Ok(HelperOutcome::Return(ret))
    }

    fn map_pop_elem(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        self.pop_or_peek(id, call, true)
    }

    fn map_peek_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.pop_or_peek(id, call, false)
    }

    fn pop_or_peek(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
        pop: bool,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let map = &mut self.maps[m as usize];
        let size = map.def().value_size as usize;
        let r = if pop { map.pop() } else { map.peek() };
        let ret = match r {
            Ok(v) => {
                call.write(call.arg(2), &v)?;
                if pop {
                    self.events.push(ModelEvent::MapPop {
                        map: m,
                        value: Some(v),
                        ret: 0,
                    });
                }
                0
            }
            Err(e @ MapError::Unsupported { .. }) => {
                return Err(Self::helper_fault(id, call, &e.to_string()));
            }
            Err(e) => {
                // The kernel leaves the buffer as it was on -ENOENT; write nothing.
                let _ = size;
                e.ret()
            }
        };
        Ok(HelperOutcome::Return(ret))
    }

    // ---- task, printk -----------------------------------------------------------

    fn get_current_comm(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let size = call.arg(2) as usize;
        let bytes = self.config.task.comm_bytes(size);
        call.write(call.arg(1), &bytes)?;
        Ok(HelperOutcome::Return(0))
    }

    /// Reads memory for `%s` and `%pI4`: the program's memory first, then the kernel image.
    fn printk_text(&self, call: &HelperCall<'_>, fmt: &[u8], args: &[u64]) -> Result<String, i32> {
        let mem = call.memory();
        let kernel = &self.config.kernel_memory;
        let mut read = |addr: u64, len: usize| {
            mem.read(addr, len)
                .ok()
                .map(|b| b.to_vec())
                .or_else(|| kernel.read(addr, len).map(|b| b.to_vec()))
        };
        printk::format(fmt, args, &mut read)
    }

    fn log_printk(&mut self, text: &str) {
        let line = text.strip_suffix('\n').unwrap_or(text);
        self.events.push(ModelEvent::Printk(line.to_string()));
    }

    fn trace_printk(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let fmt = call.read(call.arg(1), call.arg(2) as usize)?.to_vec();
        let args = [call.arg(3), call.arg(4), call.arg(5)];
        match self.printk_text(call, &fmt, &args) {
            Ok(text) => {
                let (_, len) = printk::into_buffer(&text, printk::MAX_OUTPUT);
                let shown = &text[..text.len().min(printk::MAX_OUTPUT - 1)];
                self.log_printk(shown);
                Ok(HelperOutcome::Return(len as u64))
            }
            Err(e) => Ok(ret_errno(e)),
        }
    }

    /// The u64 arguments of `trace_vprintk` / `snprintf` (data, data_len).
    fn vararg_array(
        call: &HelperCall<'_>,
        data: u64,
        len: u64,
    ) -> Result<Result<Vec<u64>, i32>, Fault> {
        if !len.is_multiple_of(8) || len / 8 > printk::MAX_ARGS as u64 || (data == 0 && len != 0) {
            return Ok(Err(EINVAL));
        }
        if len == 0 {
            return Ok(Ok(Vec::new()));
        }
        let b = call.read(data, len as usize)?;
        Ok(Ok(b
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect()))
    }

    fn trace_vprintk(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let fmt = call.read(call.arg(1), call.arg(2) as usize)?.to_vec();
        let args = match Self::vararg_array(call, call.arg(3), call.arg(4))? {
            Ok(a) => a,
            Err(e) => return Ok(ret_errno(e)),
        };
        match self.printk_text(call, &fmt, &args) {
            Ok(text) => {
                let (_, len) = printk::into_buffer(&text, printk::MAX_OUTPUT);
                let shown = &text[..text.len().min(printk::MAX_OUTPUT - 1)];
                self.log_printk(shown);
                Ok(HelperOutcome::Return(len as u64))
            }
            Err(e) => Ok(ret_errno(e)),
        }
    }

    fn snprintf(&mut self, _id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let (out, size) = (call.arg(1), call.arg(2) as usize);
        // The format is a constant string: read up to its NUL.
        let fmt = read_vm_str(call.memory(), call.arg(3), 4096)
            .ok_or_else(|| call.error(-1, "bpf_snprintf: the format string is not readable"))?;
        let mut fmt = fmt;
        fmt.push(0);
        let args = match Self::vararg_array(call, call.arg(4), call.arg(5))? {
            Ok(a) => a,
            Err(e) => return Ok(ret_errno(e)),
        };
        match self.printk_text(call, &fmt, &args) {
            Ok(text) => {
                let (bytes, len) = printk::into_buffer(&text, size);
                if size > 0 {
                    call.write(out, &bytes)?;
                }
                Ok(HelperOutcome::Return(len as u64 + 1))
            }
            Err(e) => {
                if size > 0 {
                    call.write(out, &[0])?;
                }
                Ok(ret_errno(e))
            }
        }
    }

    // ---- probe_read -------------------------------------------------------------

    fn probe_read_kernel(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (dst, size, src) = (call.arg(1), call.arg(2) as usize, call.arg(3));
        let bytes = call
            .memory()
            .read(src, size)
            .ok()
            .map(|b| b.to_vec())
            .or_else(|| {
                self.config
                    .kernel_memory
                    .read(src, size)
                    .map(|b| b.to_vec())
            });
        probe_result(call, dst, size, bytes)
    }

    fn probe_read_user(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (dst, size, src) = (call.arg(1), call.arg(2) as usize, call.arg(3));
        let bytes = self.config.user_memory.read(src, size).map(|b| b.to_vec());
        probe_result(call, dst, size, bytes)
    }

    fn probe_read_kernel_str(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (dst, size, src) = (call.arg(1), call.arg(2) as usize, call.arg(3));
        let max = size.saturating_sub(1);
        let s = match read_vm_str_partial(call.memory(), src, max) {
            Some(s) => Some(s),
            None => match self.config.kernel_memory.read_str(src, max) {
                (s, true) => Some(s),
                _ => None,
            },
        };
        probe_str_result(call, dst, size, s)
    }

    fn probe_read_user_str(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (dst, size, src) = (call.arg(1), call.arg(2) as usize, call.arg(3));
        let s = match self
            .config
            .user_memory
            .read_str(src, size.saturating_sub(1))
        {
            (s, true) => Some(s),
            _ => None,
        };
        probe_str_result(call, dst, size, s)
    }

    // ---- packets ----------------------------------------------------------------

    /// `bpf_dynptr_read` / `_write` / `_data`: carried out on packet
    /// dynptrs (the only kind the model makes); any other is a fault.
    fn dynptr_helper(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let helper = helper_name(id)
            .and_then(|n| DynptrHelper::from_name(n.strip_prefix("bpf_").unwrap_or(n)))
            .ok_or_else(|| Self::helper_fault(id, call, "is not a dynptr helper"))?;
        dynptr::call_helper(helper, id, call).map(HelperOutcome::Return)
    }

    /// `(data offset, length)` of the packet data in the packet region.
    fn packet(id: i32, call: &HelperCall<'_>) -> Result<(u32, u32, u32, u32), Fault> {
        call.memory()
            .packet_window()
            .ok_or_else(|| Self::helper_fault(id, call, "this run has no packet"))
    }

    /// The checks `bpf_xdp_load_bytes` and `bpf_xdp_store_bytes` share:
    /// the packet address of `off`, the buffer and the length, or the
    /// error the helper returns (EFAULT for oversized arguments, EINVAL
    /// for a range past the packet's end).
    fn xdp_bytes_args(
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<Result<(u64, u64, usize), HelperOutcome>, Fault> {
        let (_, data, end, _) = Self::packet(id, call)?;
        let (off, buf, len) = (call.arg(2), call.arg(3), call.arg(4));
        if off > 0xffff || len > 0xffff {
            return Ok(Err(ret_errno(EFAULT)));
        }
        if off + len > (end - data) as u64 {
            return Ok(Err(ret_errno(EINVAL)));
        }
        Ok(Ok((
            address(ids::PACKET, data as u64 + off),
            buf,
            len as usize,
        )))
    }

    fn xdp_load_bytes(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (at, buf, len) = match Self::xdp_bytes_args(id, call)? {
            Ok(args) => args,
            Err(error) => return Ok(error),
        };
        let bytes = call.read(at, len)?.to_vec();
        call.write(buf, &bytes)?;
        Ok(HelperOutcome::Return(0))
    }

    fn xdp_store_bytes(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (at, buf, len) = match Self::xdp_bytes_args(id, call)? {
            Ok(args) => args,
            Err(error) => return Ok(error),
        };
        let bytes = call.read(buf, len)?.to_vec();
        call.write(at, &bytes)?;
        Ok(HelperOutcome::Return(0))
    }

    fn skb_load_bytes(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (_, data, end, _) = Self::packet(id, call)?;
        let (off, buf, len) = (
            call.arg(2) as u32 as u64,
            call.arg(3),
            call.arg(4) as u32 as u64,
        );
        if off > i32::MAX as u64 || off + len > (end - data) as u64 {
            call.write(buf, &vec![0; len as usize])?;
            return Ok(ret_errno(EFAULT));
        }
        let bytes = call
            .read(address(ids::PACKET, data as u64 + off), len as usize)?
            .to_vec();
        call.write(buf, &bytes)?;
        Ok(HelperOutcome::Return(0))
    }

    fn skb_store_bytes(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        const BPF_F_RECOMPUTE_CSUM: u64 = 1;
        const BPF_F_INVALIDATE_HASH: u64 = 2;
        let (_, data, end, _) = Self::packet(id, call)?;
        let (off, buf, len, flags) = (
            call.arg(2) as u32 as u64,
            call.arg(3),
            call.arg(4) as u32 as u64,
            call.arg(5),
        );
        if flags & !(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH) != 0 {
            return Ok(ret_errno(EINVAL));
        }
        if off > i32::MAX as u64 || off + len > (end - data) as u64 {
            return Ok(ret_errno(EFAULT));
        }
        let bytes = call.read(buf, len as usize)?.to_vec();
        call.write(address(ids::PACKET, data as u64 + off), &bytes)?;
        Ok(HelperOutcome::Return(0))
    }

    fn csum_replace(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
        l4: bool,
    ) -> Result<HelperOutcome, Fault> {
        let (_, data, end, _) = Self::packet(id, call)?;
        let mut packet = call.memory().packet_data().unwrap_or_default().to_vec();
        let (off, from, to, flags) = (call.arg(2) as u32, call.arg(3), call.arg(4), call.arg(5));
        let r = if l4 {
            csum::l4_csum_replace(&mut packet, off, from, to, flags)
        } else {
            csum::l3_csum_replace(&mut packet, off, from, to, flags)
        };
        match r {
            Ok(()) => {
                let o = off as usize;
                if o + 2 <= (end - data) as usize {
                    call.write(
                        address(ids::PACKET, data as u64 + off as u64),
                        &packet[o..o + 2],
                    )?;
                }
                Ok(HelperOutcome::Return(0))
            }
            Err(e) => Ok(ret_errno(e)),
        }
    }

    fn l3_csum_replace(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.csum_replace(id, call, false)
    }

    fn l4_csum_replace(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.csum_replace(id, call, true)
    }

    fn csum_diff(&mut self, _id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let (from_size, to_size) = (call.arg(2) as u32 as usize, call.arg(4) as u32 as usize);
        let from = if from_size > 0 {
            call.read(call.arg(1), from_size)?.to_vec()
        } else {
            Vec::new()
        };
        let to = if to_size > 0 {
            call.read(call.arg(3), to_size)?.to_vec()
        } else {
            Vec::new()
        };
        Ok(HelperOutcome::Return(csum::csum_diff(
            &from,
            &to,
            call.arg(5) as u32,
        )))
    }

    fn xdp_adjust_head(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (meta, data, end, _) = Self::packet(id, call)?;
        let delta = call.arg(2) as i32 as i64;
        let metalen = data - meta;
        let new_data = data as i64 + delta;
        if new_data < (XDP_FRAME_SIZE + metalen) as i64 || new_data > end as i64 - ETH_HLEN as i64 {
            return Ok(ret_errno(EINVAL));
        }
        let new_meta = (meta as i64 + delta) as u32;
        let meta_bytes = if metalen > 0 {
            call.read(address(ids::PACKET, meta as u64), metalen as usize)?
                .to_vec()
        } else {
            Vec::new()
        };
        call.set_packet_window(new_meta, new_data as u32, end)?;
        if metalen > 0 {
            // The kernel moves the metadata along with data.
            call.write(address(ids::PACKET, new_meta as u64), &meta_bytes)?;
        }
        Ok(HelperOutcome::Return(0))
    }

    fn xdp_adjust_meta(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (meta, data, end, _) = Self::packet(id, call)?;
        let new_meta = meta as i64 + call.arg(2) as i32 as i64;
        if new_meta < XDP_FRAME_SIZE as i64 || new_meta > data as i64 {
            return Ok(ret_errno(EINVAL));
        }
        let metalen = data as i64 - new_meta;
        if metalen % 4 != 0 || metalen > 32 {
            return Ok(ret_errno(EACCES));
        }
        call.set_packet_window(new_meta as u32, data, end)?;
        Ok(HelperOutcome::Return(0))
    }

    fn xdp_adjust_tail(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (meta, data, end, cap) = Self::packet(id, call)?;
        let delta = call.arg(2) as i32 as i64;
        let new_end = end as i64 + delta;
        if new_end > cap as i64 || new_end < (data + ETH_HLEN) as i64 {
            return Ok(ret_errno(EINVAL));
        }
        call.set_packet_window(meta, data, new_end as u32)?;
        if delta > 0 {
            // Grown bytes are cleared (they could hold old data).
            call.write(address(ids::PACKET, end as u64), &vec![0; delta as usize])?;
        }
        Ok(HelperOutcome::Return(0))
    }

    fn redirect_ifindex(
        &mut self,
        _id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let (ifindex, flags) = (call.arg(1) as u32, call.arg(2));
        let xdp = call.memory().context_layout() == Some(&ContextLayout::Xdp);
        let ok = if xdp {
            flags == 0
        } else {
            flags & !BPF_F_INGRESS == 0
        };
        if !ok {
            return Ok(HelperOutcome::Return(if xdp {
                XDP_ABORTED
            } else {
                TC_ACT_SHOT
            }));
        }
        let target = RedirectTarget::Ifindex { ifindex, flags };
        self.events.push(ModelEvent::Redirect(target.clone()));
        self.run.redirect = Some(target);
        Ok(HelperOutcome::Return(if xdp {
            XDP_REDIRECT
        } else {
            TC_ACT_REDIRECT
        }))
    }

    fn redirect_map(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let (key, flags) = (call.arg(2) as u32, call.arg(3));
        let map = &mut self.maps[m as usize];
        let broadcast_ok = matches!(map.def().map_type, MapType::Devmap | MapType::DevmapHash);
        let flag_mask = if broadcast_ok {
            BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
        } else {
            0
        };
        let action_mask = 3;
        if flags & !(action_mask | flag_mask) != 0 {
            return Ok(HelperOutcome::Return(XDP_ABORTED));
        }
        let found = map
            .lookup(&key.to_le_bytes(), self.config.cpu)
            .map_err(|e| Self::helper_fault(id, call, &e.to_string()))?
            .is_some();
        if !found && flags & BPF_F_BROADCAST == 0 {
            return Ok(HelperOutcome::Return(flags & action_mask));
        }
        let target = RedirectTarget::Map { map: m, key, flags };
        self.events.push(ModelEvent::Redirect(target.clone()));
        self.run.redirect = Some(target);
        Ok(HelperOutcome::Return(XDP_REDIRECT))
    }

    // ---- ring buffer, perf ------------------------------------------------------

    fn ringbuf_output(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let (size, flags) = (call.arg(3) as usize, call.arg(4));
        let data = if size > 0 {
            call.read(call.arg(2), size)?.to_vec()
        } else {
            Vec::new()
        };
        let Model::RingBuf(rb) = self.maps[m as usize].model_mut() else {
            return Err(Self::helper_fault(id, call, "the map is not a ring buffer"));
        };
        let r = rb.output(&data, flags);
        if r.is_ok() {
            self.events.push(ModelEvent::Ringbuf { map: m, data });
        }
        Ok(HelperOutcome::Return(map_ret(r)))
    }

    fn ringbuf_reserve(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let (size, flags) = (call.arg(2), call.arg(3));
        let Model::RingBuf(rb) = self.maps[m as usize].model_mut() else {
            return Err(Self::helper_fault(id, call, "the map is not a ring buffer"));
        };
        Ok(HelperOutcome::Return(match rb.reserve(size, flags) {
            None => 0,
            Some((_, cell)) => {
                self.value_region(call, &cell, RegionKind::RingbufRecord { map: m }, true)
            }
        }))
    }

    /// The ring buffer and record cell behind a record pointer.
    fn record_arg(
        &self,
        id: i32,
        call: &HelperCall<'_>,
    ) -> Result<(u32, RegionId, ValueCell), Fault> {
        let addr = call.arg(1);
        let (rid, off) = split_address(addr);
        if off == 0
            && let Some(r) = call.memory().region(rid)
            && let RegionKind::RingbufRecord { map } = r.kind()
            && let Some((cell, _)) = self.run.value_regions.values().find(|(_, i)| *i == rid)
        {
            return Ok((*map, rid, cell.clone()));
        }
        Err(Self::helper_fault(
            id,
            call,
            &format!("{addr:#x} is not a reserved ring buffer record"),
        ))
    }

    fn ringbuf_commit(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
        submit: bool,
    ) -> Result<HelperOutcome, Fault> {
        let (m, rid, cell) = self.record_arg(id, call)?;
        let Model::RingBuf(rb) = self.maps[m as usize].model_mut() else {
            return Err(Self::helper_fault(
                id,
                call,
                "the record's map is not a ring buffer",
            ));
        };
        let r = if submit {
            rb.submit(&cell)
        } else {
            rb.discard(&cell)
        };
        r.map_err(|e| Self::helper_fault(id, call, &e.to_string()))?;
        if submit {
            self.events.push(ModelEvent::Ringbuf {
                map: m,
                data: cell.to_vec(),
            });
        }
        // The program may not touch the record any more.
        self.run.value_regions.remove(&cell.id());
        call.free(rid);
        Ok(HelperOutcome::Return(0))
    }

    fn ringbuf_submit(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.ringbuf_commit(id, call, true)
    }

    fn ringbuf_discard(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.ringbuf_commit(id, call, false)
    }

    fn ringbuf_query(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let Model::RingBuf(rb) = self.maps[m as usize].model() else {
            return Err(Self::helper_fault(id, call, "the map is not a ring buffer"));
        };
        Ok(HelperOutcome::Return(rb.query(call.arg(2))))
    }

    fn perf_event_output(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 2)?;
        let (flags, size) = (call.arg(3), call.arg(5) as usize);
        let packet = call.memory().packet_data().map(|p| p.to_vec());
        let ctx_len = ((flags & BPF_F_CTXLEN_MASK) >> 32) as usize;
        let allowed = if packet.is_some() {
            BPF_F_INDEX_MASK | BPF_F_CTXLEN_MASK
        } else {
            BPF_F_INDEX_MASK
        };
        if flags & !allowed != 0 {
            return Ok(ret_errno(EINVAL));
        }
        let mut data = if size > 0 {
            call.read(call.arg(4), size)?.to_vec()
        } else {
            Vec::new()
        };
        if ctx_len > 0 {
            let p = packet.unwrap_or_default();
            if ctx_len > p.len() {
                return Ok(ret_errno(EFAULT));
            }
            data.extend_from_slice(&p[..ctx_len]);
        }
        let cpu = self.config.cpu;
        let Model::PerfEventArray(pe) = self.maps[m as usize].model_mut() else {
            return Err(Self::helper_fault(
                id,
                call,
                "the map is not a perf event array",
            ));
        };
        let r = pe.output(flags & BPF_F_INDEX_MASK, cpu, data.clone());
        if r.is_ok() {
            self.events.push(ModelEvent::Perf { map: m, cpu, data });
        }
        Ok(HelperOutcome::Return(map_ret(r)))
    }

    // ---- control flow -----------------------------------------------------------

    fn tail_call(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 2)?;
        let index = call.arg(3) as u32;
        let Model::ProgArray(pa) = self.maps[m as usize].model() else {
            return Err(Self::helper_fault(
                id,
                call,
                "the map is not a program array",
            ));
        };
        let prog = pa.target(index);
        self.events.push(ModelEvent::TailCall {
            map: m,
            index,
            prog,
        });
        Ok(match prog {
            Some(p) => HelperOutcome::TailCall(p as usize),
            None => HelperOutcome::KeepR0,
        })
    }

    fn bpf_loop(&mut self, _id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let (nr, target, ctx, flags) = (
            call.arg(1) as u32 as u64,
            call.arg(2),
            call.arg(3),
            call.arg(4),
        );
        if flags != 0 {
            return Ok(ret_errno(EINVAL));
        }
        if nr > BPF_MAX_LOOPS {
            return Ok(ret_errno(E2BIG));
        }
        if nr == 0 {
            return Ok(HelperOutcome::Return(0));
        }
        Ok(HelperOutcome::Callback {
            target,
            args: [0, ctx, 0, 0, 0],
            state: 0,
        })
    }

    fn resume_loop(call: &HelperCall<'_>, i: u64, r0: u64) -> HelperOutcome {
        let nr = call.arg(1) as u32 as u64;
        if r0 != 0 || i + 1 >= nr {
            return HelperOutcome::Return(i + 1);
        }
        HelperOutcome::Callback {
            target: call.arg(2),
            args: [i + 1, call.arg(3), 0, 0, 0],
            state: i + 1,
        }
    }

    fn for_each_map_elem(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let m = self.map_arg(id, call, 1)?;
        let (target, ctx, flags) = (call.arg(2), call.arg(3), call.arg(4));
        if flags != 0 {
            return Ok(ret_errno(EINVAL));
        }
        let items = self.maps[m as usize]
            .for_each_cells(self.config.cpu)
            .map_err(|e| Self::helper_fault(id, call, &e.to_string()))?;
        if items.is_empty() {
            return Ok(HelperOutcome::Return(0));
        }
        self.run.for_each.push(ForEach {
            map: m,
            map_addr: call.arg(1),
            ctx,
            target,
            items,
            key_region: None,
        });
        Ok(self.next_for_each(id, call, 0))
    }

    /// The callback for element `i` of the innermost `for_each_map_elem`.
    fn next_for_each(&mut self, _id: i32, call: &mut HelperCall<'_>, i: u64) -> HelperOutcome {
        let (m, key, cell, map_addr, ctx, target, old_key) = {
            let f = self.run.for_each.last_mut().expect("an active for_each");
            let (key, cell) = f.items[i as usize].clone();
            (
                f.map,
                key,
                cell,
                f.map_addr,
                f.ctx,
                f.target,
                f.key_region.take(),
            )
        };
        if let Some(k) = old_key {
            call.free(k);
        }
        let writable = !self.maps[m as usize].def().read_only_for_program();
        let value = self.value_region(
            call,
            &cell,
            RegionKind::MapValue {
                map: m,
                key: key.clone(),
            },
            writable,
        );
        let (kid, kaddr) = call.alloc(
            RegionKind::HelperBuffer {
                helper: self.for_each_id,
            },
            key,
            false,
        );
        self.run.for_each.last_mut().expect("active").key_region = Some(kid);
        HelperOutcome::Callback {
            target,
            args: [map_addr, kaddr, value, ctx, 0],
            state: i,
        }
    }

    fn resume_for_each(
        &mut self,
        id: i32,
        call: &mut HelperCall<'_>,
        i: u64,
        r0: u64,
    ) -> HelperOutcome {
        let len = self.run.for_each.last().map_or(0, |f| f.items.len() as u64);
        if r0 != 0 || i + 1 >= len {
            if let Some(f) = self.run.for_each.pop()
                && let Some(k) = f.key_region
            {
                call.free(k);
            }
            return HelperOutcome::Return(i + 1);
        }
        self.next_for_each(id, call, i + 1)
    }
}

/// A NUL-terminated string in the program's memory (bytes before the NUL).
fn read_vm_str(mem: &Memory, addr: u64, max: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < max {
        let b = mem.read(addr.wrapping_add(out.len() as u64), 1).ok()?[0];
        if b == 0 {
            return Some(out);
        }
        out.push(b);
    }
    Some(out)
}

/// Like `read_vm_str` for `probe_read_str`: None when the first byte is
/// unreadable or the memory ends before a NUL.
fn read_vm_str_partial(mem: &Memory, addr: u64, max: usize) -> Option<Vec<u8>> {
    mem.read(addr, 1).ok()?;
    read_vm_str(mem, addr, max)
}

/// Finishes `probe_read*`: copies the bytes, or zeroes the buffer and
/// returns -EFAULT when the source was not readable.
fn probe_result(
    call: &mut HelperCall<'_>,
    dst: u64,
    size: usize,
    bytes: Option<Vec<u8>>,
) -> Result<HelperOutcome, Fault> {
    if size == 0 {
        return Ok(HelperOutcome::Return(0));
    }
    match bytes {
        Some(b) => {
            call.write(dst, &b)?;
            Ok(HelperOutcome::Return(0))
        }
        None => {
            call.write(dst, &vec![0; size])?;
            Ok(ret_errno(EFAULT))
        }
    }
}

/// Finishes `probe_read*_str`: the string and its NUL, returning the
/// length with the NUL; -EFAULT (buffer zeroed) when unreadable.
fn probe_str_result(
    call: &mut HelperCall<'_>,
    dst: u64,
    size: usize,
    s: Option<Vec<u8>>,
) -> Result<HelperOutcome, Fault> {
    if size == 0 {
        return Ok(HelperOutcome::Return(0));
    }
    match s {
        Some(mut s) => {
            s.truncate(size - 1);
            s.push(0);
            call.write(dst, &s)?;
            Ok(HelperOutcome::Return(s.len() as u64))
        }
        None => {
            call.write(dst, &vec![0; size])?;
            Ok(ret_errno(EFAULT))
        }
    }
}

impl Env for ModelEnv {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let handler = usize::try_from(id)
            .ok()
            .and_then(|i| self.table.get(i).copied().flatten());
        let Some(handler) = handler else {
            let message = match helper_name(id) {
                Some(name) => format!(
                    "{name} is not modelled; record a trace to replay a program that calls it"
                ),
                None => format!("there is no helper {id} in Linux 6.18"),
            };
            return Err(call.fault(FaultKind::Helper { id, message }));
        };
        self.sync_from(call.memory());
        let before = self.cell_snapshot();
        let outcome = handler(self, id, call)?;
        self.sync_to(call, &before)?;
        self.check_memory_budget(id, call)?;
        Ok(outcome)
    }

    fn resume(
        &mut self,
        callee: Callee,
        state: u64,
        callback_r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        self.sync_from(call.memory());
        let before = self.cell_snapshot();
        let outcome = match callee {
            Callee::Helper(id) if id == self.loop_id => Self::resume_loop(call, state, callback_r0),
            Callee::Helper(id) if id == self.for_each_id => {
                self.resume_for_each(id, call, state, callback_r0)
            }
            Callee::Helper(id) => {
                return Err(Self::helper_fault(id, call, "does not take a callback"));
            }
            Callee::Kfunc { btf_id, module } => {
                return Err(call.fault(FaultKind::UnknownKfunc { btf_id, module }));
            }
        };
        self.sync_to(call, &before)?;
        Ok(outcome)
    }

    fn call_kfunc(
        &mut self,
        btf_id: i32,
        module: i16,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        if let Some(kfunc) = self.iter_num_kfunc(btf_id, module) {
            return iter_num::call(kfunc, call).map(HelperOutcome::Return);
        }
        if let Some(kfunc) = self.dynptr_kfunc(btf_id, module) {
            return dynptr::call_kfunc(kfunc, btf_id, call).map(HelperOutcome::Return);
        }
        match self.kfunc_name(btf_id).filter(|_| module == 0) {
            Some(name) => Err(call.fault(FaultKind::Helper {
                id: btf_id,
                message: format!(
                    "the kfunc {name} is not modelled; record a trace to replay a program that calls it"
                ),
            })),
            None => Err(call.fault(FaultKind::UnknownKfunc { btf_id, module })),
        }
    }

    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        let fd = imm as u32;
        let n_maps = self.maps.len();
        let no_map = |call: &HelperCall<'_>| {
            call.fault(FaultKind::Helper {
                id: -1,
                message: format!("ld_imm64 refers to map {fd}, but only {n_maps} maps are loaded"),
            })
        };
        match kind {
            Imm64Kind::MapFd | Imm64Kind::MapIdx => {
                if fd as usize >= self.maps.len() {
                    return Err(no_map(call));
                }
                if let Some(a) = self.run.map_regions.get(&fd) {
                    return Ok(*a);
                }
                let (_, a) = call.alloc(RegionKind::Map { map: fd }, Vec::new(), false);
                self.run.map_regions.insert(fd, a);
                Ok(a)
            }
            Imm64Kind::MapValue | Imm64Kind::MapIdxValue => {
                let offset = imm >> 32;
                let Some(map) = self.maps.get_mut(fd as usize) else {
                    return Err(no_map(call));
                };
                let writable = !map.def().read_only_for_program();
                let cell = map.lookup(&0u32.to_le_bytes(), self.config.cpu).ok().flatten().ok_or_else(|| {
                    call.fault(FaultKind::Helper {
                        id: -1,
                        message: format!("ld_imm64 takes the address of a value of map {fd}, which is not an array"),
                    })
                })?;
                let base =
                    self.value_region(call, &cell, RegionKind::GlobalData { map: fd }, writable);
                Ok(base + offset)
            }
            other => Err(call.fault(FaultKind::UnresolvedImm64 {
                kind: match other {
                    Imm64Kind::BtfId => "kernel variable (BTF id)",
                    Imm64Kind::Func => "function",
                    _ => "constant",
                },
                imm,
            })),
        }
    }
}

/// The XDP / TC name of a program's return value, for display.
pub fn verdict_name(layout: Option<ContextLayout>, r0: u64) -> Option<&'static str> {
    match layout? {
        ContextLayout::Xdp => [
            "XDP_ABORTED",
            "XDP_DROP",
            "XDP_PASS",
            "XDP_TX",
            "XDP_REDIRECT",
        ]
        .get(usize::try_from(r0).ok()?)
        .copied(),
        ContextLayout::SkBuff(SkbProgram::Tc) => match r0 as i64 {
            -1 => Some("TC_ACT_UNSPEC"),
            0 => Some("TC_ACT_OK"),
            1 => Some("TC_ACT_RECLASSIFY"),
            2 => Some("TC_ACT_SHOT"),
            3 => Some("TC_ACT_PIPE"),
            4 => Some("TC_ACT_STOLEN"),
            5 => Some("TC_ACT_QUEUED"),
            6 => Some("TC_ACT_REPEAT"),
            7 => Some("TC_ACT_REDIRECT"),
            8 => Some("TC_ACT_TRAP"),
            _ => None,
        },
        ContextLayout::SkBuff(SkbProgram::CgroupSkb) => match r0 {
            0 => Some("drop"),
            1 => Some("allow"),
            _ => None,
        },
        _ => None,
    }
}
