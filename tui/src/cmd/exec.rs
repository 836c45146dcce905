//! `bpfrr exec`: run raw BPF instructions in the replayer's machine.
//!
//! Two modes:
//! - the bpf_conformance plugin protocol: `bpfrr exec [MEM]`, MEM as hex
//!   byte pairs (spaces allowed), the program as hex text on stdin; prints
//!   r0 in hex and exits 0, or exits non-zero with a message.
//! - a packet program: `bpfrr exec --type xdp|socket|sched_cls --packet HEX
//!   [PROG.bin]` (raw instruction bytes, or hex text on stdin) with the
//!   context `BPF_PROG_TEST_RUN` would build; prints r0 and, for XDP and
//!   TC, the final packet, so results can be compared with the kernel's.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use bpfrr_replayer::vm::{Context, Machine, NoHelpers, Program, SkbProgram, UbpfHelpers, XdpMd};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgType {
    Xdp,
    Socket,
    #[value(name = "sched_cls", alias = "tc")]
    SchedCls,
}

#[derive(clap::Args)]
pub struct Args {
    /// Conformance mode: the input memory as hex. With --type: a file of raw
    /// instruction bytes (without it, the program is read as hex from stdin).
    input: Option<String>,
    /// Run as a packet program of this type instead of the conformance protocol.
    #[arg(long = "type", value_enum, requires = "packet")]
    prog_type: Option<ProgType>,
    /// The packet (an Ethernet frame) as hex.
    #[arg(long)]
    packet: Option<String>,
    /// Instructions one run may execute before it is stopped.
    #[arg(long, default_value_t = 1 << 30)]
    step_budget: u64,
}

/// Parses hex text, ignoring whitespace and an optional `0x` prefix.
fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let digits: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        bail!("{what} has an odd number of hex digits; give whole bytes (two digits each)");
    }
    (0..digits.len() / 2)
        .map(|i| {
            u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).with_context(|| {
                format!(
                    "{what} is not hex: {:?} at byte {i}",
                    &digits[2 * i..2 * i + 2]
                )
            })
        })
        .collect()
}

fn read_stdin_hex() -> anyhow::Result<Vec<u8>> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("cannot read the program from stdin")?;
    let bytes = parse_hex(&text, "the program on stdin")?;
    if bytes.is_empty() {
        bail!("no program on stdin; pipe the instructions as hex text");
    }
    Ok(bytes)
}

fn load(bytes: &[u8]) -> anyhow::Result<Machine> {
    let program = Program::from_bytes(bytes).context("the program cannot be loaded")?;
    Ok(Machine::new(program))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = |m: &mut Machine| {
        let mut c = *m.config();
        c.step_budget = args.step_budget;
        m.set_config(c);
    };
    let Some(prog_type) = args.prog_type else {
        // The bpf_conformance plugin protocol.
        let mem = match &args.input {
            Some(m) => parse_hex(m, "the memory argument")?,
            None => Vec::new(),
        };
        let mut machine = load(&read_stdin_hex()?)?;
        config(&mut machine);
        let r0 = machine
            .run_context(&mut UbpfHelpers, &Context::memory(mem))
            .map_err(|f| anyhow::anyhow!("the program faulted: {f}"))?;
        println!("{r0:x}");
        return Ok(());
    };
    let packet = parse_hex(args.packet.as_deref().unwrap_or(""), "--packet")?;
    let bytes = match &args.input {
        Some(path) => {
            let path = PathBuf::from(path);
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => read_stdin_hex()?,
    };
    let mut machine = load(&bytes)?;
    config(&mut machine);
    let ctx = match prog_type {
        ProgType::Xdp => Context::xdp(
            &packet,
            &[],
            XdpMd {
                ingress_ifindex: 1,
                ..XdpMd::default()
            },
        ),
        ProgType::Socket => Context::skb_test_run(SkbProgram::SocketFilter, &packet),
        ProgType::SchedCls => Context::skb_test_run(SkbProgram::Tc, &packet),
    };
    // Packet programs get no helpers here: a helper call is reported as unknown.
    let r0 = machine
        .run_context(&mut NoHelpers, &ctx)
        .map_err(|f| anyhow::anyhow!("the program faulted: {f}"))?;
    println!("r0={r0:#x}");
    if prog_type != ProgType::Socket {
        let data = machine.memory().packet_data().unwrap_or(&[]);
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        println!("packet={hex}");
    }
    Ok(())
}
