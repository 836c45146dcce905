//! `bpfrr run OBJ --prog NAME --pcap FILE --ui`: the same UI over a model
//! run, with no kernel and no recording by the user. The program runs on
//! the map models (as `bpfrr run` does) with every helper answer logged the
//! way the recorder logs it (`record_model_run`); the UI then replays that
//! in-memory trace exactly as it replays a recorded one, so every pane,
//! time travel and the invocation list work the same.

use std::path::Path;

use anyhow::Context as _;
use bpfrr_replayer::replay::model_recording::object_definitions_with_kfuncs;
use bpfrr_replayer::replay::{ModelInput, record_model_run};
use bpfrr_replayer::vm::{SkBuff, xdp_md};
use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::object::ObjectFile;
use bpfrr_trace::trace::{Trace, TraceMeta};

/// The running kernel's BTF, against which model runs resolve calls to
/// kfuncs (by name, as libbpf does) when it is there.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// The skb context the kernel's test run gives a frame.
fn skb_ctx(frame: &[u8]) -> Vec<u8> {
    let proto = frame
        .get(12..14)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    SkBuff {
        ifindex: 1,
        protocol: proto.to_be() as u32,
        wire_len: frame.len() as u32,
        gso_segs: 1,
        ..SkBuff::default()
    }
    .to_bytes()
}

/// Runs program `prog` of the object at `obj_path` on `packets` (Ethernet
/// frames) on the models and returns the run as a trace, one invocation a packet.
pub fn model_trace(
    obj_path: &Path,
    prog: &str,
    packets: &[Vec<u8>],
    cpu: u32,
) -> anyhow::Result<Trace> {
    let bytes =
        std::fs::read(obj_path).with_context(|| format!("cannot read {}", obj_path.display()))?;
    let obj = ObjectFile::parse(&bytes)
        .with_context(|| format!("{} is not a usable BPF object", obj_path.display()))?;
    // Missing (not Linux, no BTF): programs that call kfuncs fail to link, saying so.
    let kernel_btf = std::fs::read(KERNEL_BTF).ok();
    let (programs, maps) =
        object_definitions_with_kfuncs(&obj, kernel_btf.as_deref()).map_err(anyhow::Error::msg)?;
    let Some(id) = programs.iter().position(|p| p.name == prog) else {
        let names: Vec<&str> = programs.iter().map(|p| p.name.as_str()).collect();
        anyhow::bail!(
            "the object has no program `{prog}`; it has: {}",
            names.join(", ")
        );
    };
    if packets.is_empty() {
        anyhow::bail!("there are no packets to run the program on");
    }
    let prog_type = ProgType::from_number(programs[id].prog_type);
    let inputs: Vec<ModelInput> = packets
        .iter()
        .map(|f| {
            let (ctx, packet) = match prog_type {
                Some(ProgType::Xdp) => (vec![0; xdp_md::SIZE], f.clone()),
                Some(ProgType::SchedCls | ProgType::SchedAct | ProgType::SocketFilter) => {
                    (skb_ctx(f), f.clone())
                }
                // cgroup skb programs see the packet from the network header.
                Some(ProgType::CgroupSkb) => (skb_ctx(f), f.get(14..).unwrap_or_default().to_vec()),
                _ => anyhow::bail!(
                    "the UI over a model run takes packet programs (XDP, TC, socket filter, cgroup skb); `{prog}` is not one"
                ),
            };
            Ok(ModelInput {
                program: id as u32,
                cpu,
                ctx,
                packet: Some(packet),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let meta = TraceMeta {
        bpfrr_version: env!("CARGO_PKG_VERSION").into(),
        n_cpus: cpu + 1,
        command: std::env::args().collect(),
        notes: "a model run (bpfrr run --ui), not a kernel recording".into(),
        ..TraceMeta::default()
    };
    let path = std::env::temp_dir().join(format!("bpfrr-run-ui-{}.bpfrr", std::process::id()));
    let trace = record_model_run(&path, meta, &programs, &maps, &inputs, |_| {});
    let _ = std::fs::remove_file(&path);
    trace.map_err(|e| anyhow::anyhow!("the model run failed: {e}"))
}

/// Opens the UI over a model run of `prog` on `packets`.
pub fn run_model_ui(
    obj_path: &Path,
    prog: &str,
    packets: &[Vec<u8>],
    cpu: u32,
) -> anyhow::Result<()> {
    let trace = model_trace(obj_path, prog, packets, cpu)?;
    // Sources are looked up next to the object file.
    super::run_replay_ui(&trace, Some(obj_path), 0)
}
