//! `bpfrr run OBJ --prog NAME (--pcap FILE | --packet HEX | --ctx FILE)`:
//! runs one program of a BPF object in the model environment (map models,
//! deterministic clock, no kernel) and prints, per input, the return
//! value, the printk output, ring buffer / perf records, redirects and the
//! map changes, formatted with the object's BTF where it has types.

use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bpfrr_replayer::env::model::verdict_name;
use bpfrr_replayer::env::{ModelConfig, ModelEnv, ModelEvent, RedirectTarget};
use bpfrr_replayer::maps::{Map, MapDef, MapEntries, MapType, Model, diff_entries};
use bpfrr_replayer::vm::{Context, Limits, Machine, Program, SkbProgram, XdpMd};
use bpfrr_trace::btf::Btf;
use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::isa::{CallTarget, Insn, check};
use bpfrr_trace::object::ObjectFile;

use crate::ui::model_run::KERNEL_BTF;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["pcap", "packet", "ctx"])))]
pub struct Args {
    /// The BPF object file (clang -target bpf).
    obj: PathBuf,
    /// The program to run (its function name).
    #[arg(long)]
    prog: String,
    /// Run once per packet of this pcap file (Ethernet frames).
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Run once on this packet (an Ethernet frame as hex).
    #[arg(long)]
    packet: Option<String>,
    /// Run once with this file as the raw context (tracepoint record,
    /// pt_regs, raw tracepoint arguments).
    #[arg(long)]
    ctx: Option<PathBuf>,
    /// Run each input this many times (maps keep their contents).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Fill a program array slot: MAP:INDEX=PROG (e.g. jump_table:0=tc_redirect_port).
    #[arg(long = "tail", value_name = "MAP:INDEX=PROG")]
    tail: Vec<String>,
    /// The CPU the program runs on.
    #[arg(long, default_value_t = 0)]
    cpu: u32,
    /// Instructions one run may execute before it is stopped.
    #[arg(long, default_value_t = 1 << 24)]
    step_budget: u64,
    /// Open the replay UI over the run (packet programs, --pcap or --packet).
    #[arg(long)]
    ui: bool,
}

/// The object's maps as models, seeded with global data.
fn build_maps(obj: &ObjectFile, n_cpus: u32) -> anyhow::Result<Vec<Map>> {
    let mut maps = Vec::new();
    for d in obj.maps() {
        let t = MapType::from_number(d.map_type).with_context(|| {
            format!(
                "map `{}` has map type {}, which this bpfrr does not know",
                d.name, d.map_type
            )
        })?;
        let mut def = MapDef::new(&d.name, t, d.key_size, d.value_size, d.max_entries);
        def.flags = d.flags;
        let mut map =
            Map::new(def, n_cpus).map_err(|e| anyhow::anyhow!("map `{}`: {e}", d.name))?;
        if let Some(data) = &d.initial_data {
            map.seed(&0u32.to_le_bytes(), data).map_err(|e| {
                anyhow::anyhow!("map `{}`: cannot load its initial data: {e}", d.name)
            })?;
        }
        maps.push(map);
    }
    Ok(maps)
}

/// Links every program of the object (the requested one first, index 0),
/// so tail calls can reach the others.
/// Also returns the program names (index = program number), the entry's
/// program type, the object's BTF with DATASEC offsets filled in, and the
/// names of the kfuncs the programs call by BTF id.
type Built = (
    Vec<Program>,
    Vec<String>,
    u32,
    Option<Btf>,
    Vec<(u32, String)>,
);

fn build_programs(
    obj: &ObjectFile,
    entry: &str,
    n_maps: usize,
    kernel_btf: Option<&[u8]>,
) -> anyhow::Result<Built> {
    let fds: Vec<i32> = (0..n_maps as i32).collect();
    let infos = obj.programs();
    let Some(main) = infos.iter().find(|p| p.name == entry) else {
        let names: Vec<_> = infos.iter().map(|p| p.name.as_str()).collect();
        bail!(
            "the object has no program `{entry}`; it has: {}",
            names.join(", ")
        );
    };
    let mut order = vec![main.clone()];
    order.extend(infos.iter().filter(|p| p.name != entry).cloned());
    let mut programs = Vec::new();
    let mut btf = None;
    let mut kfunc_ids = Vec::new();
    for info in &order {
        let linked = match kernel_btf {
            Some(kernel) => obj.link_with_kfuncs(&info.name, &fds, kernel),
            None => obj.link(&info.name, &fds),
        }
        .with_context(|| format!("cannot link program `{}`", info.name))?;
        if btf.is_none() {
            btf = linked.btf.as_deref().and_then(|b| Btf::parse(b).ok());
        }
        let checked = check(&linked.insns)
            .with_context(|| format!("program `{}` is not valid BPF", info.name))?;
        let p = Program::new(&checked, Limits::default())
            .with_context(|| format!("cannot prepare program `{}`", info.name))?;
        kfunc_ids.extend(checked.insns.iter().filter_map(|i| match i {
            Some(Insn::Call(CallTarget::Kfunc { btf_id, .. })) => Some(*btf_id as u32),
            _ => None,
        }));
        programs.push(p);
    }
    Ok((
        programs,
        order.iter().map(|p| p.name.clone()).collect(),
        main.prog_type,
        btf,
        kfunc_names(kernel_btf, kfunc_ids),
    ))
}

/// The names of the kfuncs with these BTF ids in the kernel's BTF (the
/// model knows kfuncs by name).
fn kfunc_names(kernel_btf: Option<&[u8]>, mut ids: Vec<u32>) -> Vec<(u32, String)> {
    ids.sort_unstable();
    ids.dedup();
    let Some(kernel) = kernel_btf.filter(|_| !ids.is_empty()) else {
        return Vec::new();
    };
    let Ok(btf) = Btf::parse(kernel) else {
        return Vec::new(); // linking succeeded, so this does not happen
    };
    ids.into_iter()
        .filter_map(|id| Some((id, btf.type_by_id(id)?.name.clone())))
        .collect()
}

/// `--tail MAP:INDEX=PROG`.
fn apply_tail(spec: &str, maps: &mut [Map], names: &[String]) -> anyhow::Result<()> {
    let bad = || {
        anyhow::anyhow!(
            "--tail `{spec}`: expected MAP:INDEX=PROG, e.g. jump_table:0=tc_redirect_port"
        )
    };
    let (map, rest) = spec.split_once(':').ok_or_else(bad)?;
    let (index, prog) = rest.split_once('=').ok_or_else(bad)?;
    let index: u32 = index.parse().map_err(|_| bad())?;
    let Some(m) = maps.iter_mut().find(|m| m.def().name == map) else {
        bail!("--tail `{spec}`: the object has no map `{map}`");
    };
    let Some(p) = names.iter().position(|n| n == prog) else {
        bail!("--tail `{spec}`: the object has no program `{prog}`");
    };
    if m.def().map_type != MapType::ProgArray {
        bail!("--tail `{spec}`: map `{map}` is not a program array");
    }
    m.seed(&index.to_le_bytes(), &(p as u32).to_le_bytes())
        .map_err(|e| anyhow::anyhow!("--tail `{spec}`: {e}"))
}

fn parse_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) {
        bail!(
            "the packet hex has an odd number of digits ({})",
            digits.len()
        );
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16).with_context(|| {
                format!(
                    "`{}` at offset {i} of the packet hex is not a hex byte",
                    &digits[i..i + 2]
                )
            })
        })
        .collect()
}

/// The packets of a classic pcap file (either byte order, µs or ns stamps).
fn read_pcap(bytes: &[u8]) -> anyhow::Result<Vec<Vec<u8>>> {
    Ok(bpfrr_trace::pcap::read_packets(bytes)?)
}

fn context_for(
    prog_type: u32,
    packet: Option<&[u8]>,
    raw: Option<&[u8]>,
) -> anyhow::Result<Context> {
    let t = ProgType::from_number(prog_type);
    if let Some(p) = packet {
        return Ok(match t {
            Some(ProgType::Xdp) => Context::xdp(
                p,
                &[],
                XdpMd {
                    ingress_ifindex: 1,
                    ..XdpMd::default()
                },
            ),
            Some(ProgType::SchedCls | ProgType::SchedAct) => {
                Context::skb_test_run(SkbProgram::Tc, p)
            }
            Some(ProgType::SocketFilter) => Context::skb_test_run(SkbProgram::SocketFilter, p),
            Some(ProgType::CgroupSkb) => Context::skb_test_run(SkbProgram::CgroupSkb, p),
            _ => bail!(
                "a {} program does not take a packet; give its context with --ctx FILE",
                t.map_or("unknown", |t| t.name())
            ),
        });
    }
    let raw = raw.unwrap_or_default().to_vec();
    Ok(match t {
        Some(ProgType::Tracepoint) => Context::tracepoint(raw),
        Some(ProgType::Kprobe) => {
            let mut regs = [0u64; 21];
            for (r, c) in regs.iter_mut().zip(raw.chunks(8)) {
                let mut b = [0u8; 8];
                b[..c.len()].copy_from_slice(c);
                *r = u64::from_le_bytes(b);
            }
            Context::pt_regs(&regs)
        }
        Some(ProgType::RawTracepoint | ProgType::RawTracepointWritable) => {
            let args: Vec<u64> = raw
                .chunks(8)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..c.len()].copy_from_slice(c);
                    u64::from_le_bytes(b)
                })
                .collect();
            Context::raw_tracepoint(&args)
        }
        Some(
            ProgType::Xdp
            | ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::SocketFilter
            | ProgType::CgroupSkb,
        ) => {
            bail!("a packet program needs --packet HEX or --pcap FILE")
        }
        _ => Context::raw(raw),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Formats map keys and values with BTF types when the object has them.
struct Formatter<'a> {
    btf: Option<&'a Btf>,
}

impl Formatter<'_> {
    fn value(&self, type_id: u32, bytes: &[u8]) -> String {
        match self.btf {
            Some(btf) if type_id != 0 => btf.format_value(type_id, bytes),
            _ => hex(bytes),
        }
    }

    fn values(&self, type_id: u32, values: &[Vec<u8>]) -> String {
        if values.len() == 1 {
            return self.value(type_id, &values[0]);
        }
        let per_cpu: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(cpu, v)| format!("cpu{cpu}: {}", self.value(type_id, v)))
            .collect();
        per_cpu.join(", ")
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.ui {
        let packets = match (&args.pcap, &args.packet) {
            (Some(p), _) => read_pcap(
                &std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            )?,
            (None, Some(h)) => vec![parse_hex(h)?],
            _ => bail!("--ui needs packets: give --pcap FILE or --packet HEX"),
        };
        return crate::ui::model_run::run_model_ui(&args.obj, &args.prog, &packets, args.cpu);
    }
    let bytes =
        std::fs::read(&args.obj).with_context(|| format!("cannot read {}", args.obj.display()))?;
    let obj = ObjectFile::parse(&bytes)
        .with_context(|| format!("{} is not a usable BPF object", args.obj.display()))?;
    let object_maps = obj.maps();
    let config = ModelConfig {
        cpu: args.cpu,
        n_cpus: args.cpu + 1,
        ..ModelConfig::default()
    };
    let mut maps = build_maps(&obj, config.n_cpus)?;
    // Missing (not Linux, no BTF): programs that call kfuncs fail to link, saying so.
    let kernel_btf = std::fs::read(KERNEL_BTF).ok();
    let (programs, names, prog_type, btf, kfuncs) =
        build_programs(&obj, &args.prog, maps.len(), kernel_btf.as_deref())?;
    for spec in &args.tail {
        apply_tail(spec, &mut maps, &names)?;
    }
    let mut machine = Machine::with_programs(programs);
    let mut machine_config = *machine.config();
    machine_config.step_budget = args.step_budget;
    machine.set_config(machine_config);
    let mut env = ModelEnv::new(maps, config);
    env.set_kfunc_names(kfuncs);

    // (label, context, the frame for packet programs)
    let inputs: Vec<(String, Context, Option<Vec<u8>>)> = if let Some(path) = &args.pcap {
        let data =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let packets = read_pcap(&data).with_context(|| format!("{}", path.display()))?;
        packets
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let ctx = context_for(prog_type, Some(p), None)?;
                Ok((
                    format!("packet {} ({} bytes)", i + 1, p.len()),
                    ctx,
                    Some(p.clone()),
                ))
            })
            .collect::<anyhow::Result<_>>()?
    } else if let Some(h) = &args.packet {
        let p = parse_hex(h)?;
        let ctx = context_for(prog_type, Some(&p), None)?;
        vec![(format!("packet ({} bytes)", p.len()), ctx, Some(p))]
    } else {
        let path = args.ctx.as_ref().expect("clap requires one input");
        let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        vec![(
            format!("context {}", path.display()),
            context_for(prog_type, None, Some(&raw))?,
            None,
        )]
    };

    let fmt = Formatter {
        btf: btf.as_ref().or(obj.btf()),
    };
    let mut faults = 0;
    // XDP and TC programs see (and may change) the whole frame.
    let whole_frame = matches!(
        ProgType::from_number(prog_type),
        Some(ProgType::Xdp | ProgType::SchedCls | ProgType::SchedAct)
    );
    for (label, ctx, frame) in &inputs {
        for rep in 0..args.repeat {
            let before: Vec<MapEntries> = env.maps().iter().map(|m| m.entries()).collect();
            let result = env.run(&mut machine, 0, ctx);
            let title = if args.repeat > 1 {
                format!("{label}, run {}", rep + 1)
            } else {
                label.clone()
            };
            match result {
                Ok(r0) => {
                    let name = verdict_name(ctx.layout(), r0)
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    println!("{title}: r0 = {}{name}", r0 as i64);
                }
                Err(f) => {
                    faults += 1;
                    println!("{title}: fault: {f}");
                }
            }
            if whole_frame
                && let Some(frame) = frame
                && let Some(out) = machine.memory().packet_data()
                && out != frame.as_slice()
            {
                println!("  packet out ({} bytes): {}", out.len(), hex(out));
            }
            print_events(&mut env, &fmt, &object_maps);
            print_map_changes(&env, &before, &fmt, &object_maps);
            // The consumer side of ring buffers and perf arrays: free their space.
            for m in env.maps_mut() {
                match m.model_mut() {
                    Model::RingBuf(rb) => {
                        rb.drain();
                    }
                    Model::PerfEventArray(p) => {
                        p.drain();
                    }
                    _ => {}
                }
            }
        }
    }
    if faults > 0 {
        bail!("{faults} run(s) faulted");
    }
    Ok(())
}

fn print_events(env: &mut ModelEnv, fmt: &Formatter<'_>, defs: &[bpfrr_trace::object::MapDef]) {
    let name = |m: u32| {
        defs.get(m as usize)
            .map_or("?".to_string(), |d| d.name.clone())
    };
    for ev in env.take_events() {
        match ev {
            ModelEvent::Printk(line) => println!("  printk: {line}"),
            ModelEvent::Ringbuf { map, data } => {
                println!("  ringbuf {}: {}", name(map), hex(&data))
            }
            ModelEvent::Perf { map, cpu, data } => {
                println!("  perf {} (cpu {cpu}): {}", name(map), hex(&data))
            }
            ModelEvent::Redirect(RedirectTarget::Ifindex { ifindex, flags }) => {
                println!("  redirect: ifindex {ifindex} (flags {flags:#x})")
            }
            ModelEvent::Redirect(RedirectTarget::Map { map, key, flags }) => {
                println!("  redirect: map {} key {key} (flags {flags:#x})", name(map))
            }
            ModelEvent::TailCall { map, index, prog } => match prog {
                Some(p) => println!("  tail call: {}[{index}] -> program {p}", name(map)),
                None => println!("  tail call: {}[{index}] is empty, fell through", name(map)),
            },
            ModelEvent::Evicted { map, key } => {
                let k = defs.get(map as usize).map_or(0, |d| d.btf_key_type_id);
                println!("  evicted: {}[{}]", name(map), fmt.value(k, &key))
            }
            // Map updates show up in the map changes below.
            ModelEvent::MapUpdate { ret, map, .. }
            | ModelEvent::MapDelete { ret, map, .. }
            | ModelEvent::MapPush { ret, map, .. }
            | ModelEvent::MapPop { ret, map, .. } => {
                if ret < 0 {
                    println!("  map {}: helper returned {ret}", name(map));
                }
            }
        }
    }
}

fn print_map_changes(
    env: &ModelEnv,
    before: &[MapEntries],
    fmt: &Formatter<'_>,
    defs: &[bpfrr_trace::object::MapDef],
) {
    for (i, m) in env.maps().iter().enumerate() {
        let is_array = matches!(m.def().map_type, MapType::Array | MapType::PercpuArray);
        let d = &defs[i];
        let global = d.initial_data.is_some();
        for c in diff_entries(&before[i], &m.entries(), is_array) {
            let key = if global {
                String::new()
            } else {
                format!("[{}]", fmt.value(d.btf_key_type_id, &c.key))
            };
            let show = |v: &Option<Vec<Vec<u8>>>| match v {
                Some(v) => fmt.values(d.btf_value_type_id, v),
                None => "(none)".to_string(),
            };
            println!(
                "  map {}{key}: {} -> {}",
                d.name,
                show(&c.old),
                show(&c.new)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_pcap_parsing() {
        assert_eq!(parse_hex("0a 0b:0c").unwrap(), vec![10, 11, 12]);
        assert!(
            parse_hex("abc")
                .unwrap_err()
                .to_string()
                .contains("odd number")
        );
        assert!(parse_hex("zz").is_err());
        let mut pcap = vec![0xd4, 0xc3, 0xb2, 0xa1];
        pcap.extend([0u8; 20]);
        pcap.extend([0u8; 8]);
        pcap.extend(2u32.to_le_bytes());
        pcap.extend(2u32.to_le_bytes());
        pcap.extend([7, 8]);
        assert_eq!(read_pcap(&pcap).unwrap(), vec![vec![7, 8]]);
        pcap.pop();
        assert!(
            read_pcap(&pcap)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        assert!(
            read_pcap(b"0123456789012345678901234")
                .unwrap_err()
                .to_string()
                .contains("not a pcap")
        );
    }
}
