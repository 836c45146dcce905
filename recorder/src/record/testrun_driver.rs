//! The test-run driver: runs the instrumented program with
//! BPF_PROG_TEST_RUN on given inputs (`--pcap`, `--packet`, `--ctx`), each
//! `--repeat` times, one input per step.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use bpfrr_trace::catalog::ProgType;

use crate::sys::Pinned;
use crate::testrun::{RunInput, RunKind, RunResult, run};

use super::driver::{CaptureHints, Driver, DriverError, DriverTarget, Step};

/// One input of a test run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestInput {
    /// An Ethernet frame (packet programs), with an optional context.
    Packet {
        frame: Vec<u8>,
        ctx: Option<Vec<u8>>,
    },
    /// A raw context (raw tracepoint arguments).
    Context(Vec<u8>),
}

/// Room the capture keeps beyond the largest input, for programs that
/// grow the packet (adjust_tail, change_tail).
const GROWTH_CAPTURE: u32 = 512;

/// Runs programs with BPF_PROG_TEST_RUN.
#[derive(Debug)]
pub struct TestRunDriver {
    inputs: Vec<TestInput>,
    repeat: u32,
    next: usize,
    prog: Option<(OwnedFd, RunKind)>,
    /// What the kernel returned for each run (retval, output packet).
    pub results: Vec<RunResult>,
    /// The recording thread pinned to one CPU (see `pin_to_cpu`).
    pinned: Option<Pinned>,
}

impl TestRunDriver {
    pub fn new(inputs: Vec<TestInput>, repeat: u32) -> TestRunDriver {
        TestRunDriver {
            inputs,
            repeat: repeat.max(1),
            next: 0,
            prog: None,
            results: Vec::new(),
            pinned: None,
        }
    }

    pub fn inputs(&self) -> &[TestInput] {
        &self.inputs
    }
}

impl Driver for TestRunDriver {
    fn attach_point(&self) -> String {
        "test_run".to_string()
    }

    fn capture_hints(&self) -> CaptureHints {
        let max_packet = self
            .inputs
            .iter()
            .filter_map(|i| match i {
                TestInput::Packet { frame, .. } => Some(frame.len() as u32),
                TestInput::Context(_) => None,
            })
            .max()
            .map(|m| m + GROWTH_CAPTURE);
        let ctx_size = self
            .inputs
            .iter()
            .filter_map(|i| match i {
                TestInput::Context(c) => Some(c.len() as u32),
                TestInput::Packet { .. } => None,
            })
            .max();
        CaptureHints {
            max_packet,
            ctx_size,
            pinned_cpu: self.pinned.as_ref().map(Pinned::cpu),
        }
    }

    /// Every run happens in this thread's BPF_PROG_TEST_RUN calls, which
    /// run the program on the calling CPU (raw tracepoints too: the driver
    /// never sets BPF_F_TEST_RUN_ON_CPU); pinned, a `--repeat` loop cannot
    /// move to another CPU between repeats either. A thread that cannot be
    /// pinned (its CPU set is locked) records with the clock instead.
    fn pin_to_cpu(&mut self) -> Option<u32> {
        if self.pinned.is_none() {
            self.pinned = Pinned::here().ok();
        }
        self.pinned.as_ref().map(Pinned::cpu)
    }

    fn start(&mut self, target: &DriverTarget<'_>) -> Result<(), DriverError> {
        let kind = RunKind::from_prog_type(target.prog_type).ok_or_else(|| {
            DriverError::new(format!(
                "program {:?} is a {} program, which BPF_PROG_TEST_RUN cannot run here (it runs XDP, sched_cls, socket filter, cgroup_skb and raw tracepoint programs); attach it live instead with {}",
                target.name,
                ProgType::from_number(target.prog_type).map_or("unknown", ProgType::name),
                live_option(target.prog_type)
            ))
        })?;
        for input in &self.inputs {
            match (kind, input) {
                (RunKind::RawTracepoint, TestInput::Packet { .. }) => {
                    return Err(DriverError::new(format!(
                        "program {:?} is a raw tracepoint program: give its arguments with --ctx FILE, not packets",
                        target.name
                    )));
                }
                (k, TestInput::Context(_)) if k != RunKind::RawTracepoint => {
                    return Err(DriverError::new(format!(
                        "program {:?} runs on packets: give --packet HEX or --pcap FILE (--ctx then sets its context)",
                        target.name
                    )));
                }
                _ => {}
            }
        }
        if kind == RunKind::RawTracepoint && self.repeat > 1 {
            // The kernel runs raw tracepoint tests once; repeat by hand.
            let inputs = std::mem::take(&mut self.inputs);
            for i in inputs {
                for _ in 0..self.repeat {
                    self.inputs.push(i.clone());
                }
            }
            self.repeat = 1;
        }
        let fd = target
            .prog_fd
            .try_clone_to_owned()
            .map_err(|e| DriverError::new(format!("cannot duplicate the program's fd: {e}")))?;
        self.prog = Some((fd, kind));
        Ok(())
    }

    fn step(&mut self, _budget: Duration) -> Result<Step, DriverError> {
        let Some((fd, kind)) = &self.prog else {
            return Err(DriverError::new("the test-run driver was not started"));
        };
        let Some(input) = self.inputs.get(self.next) else {
            return Ok(Step::Finished);
        };
        let run_input = match input {
            TestInput::Packet { frame, ctx } => RunInput::Packet {
                frame,
                ctx: ctx.as_deref(),
            },
            TestInput::Context(c) => RunInput::Context(c),
        };
        let repeat = if *kind == RunKind::RawTracepoint {
            1
        } else {
            self.repeat
        };
        let result = run(fd.as_fd(), *kind, run_input, repeat).map_err(|e| {
            DriverError::new(format!("test run of input {} failed: {e}", self.next + 1))
        })?;
        self.results.push(result);
        self.next += 1;
        Ok(Step::Ran(repeat as u64))
    }

    fn stop(&mut self) -> Result<(), DriverError> {
        self.prog = None;
        if let Some(mut pinned) = self.pinned.take() {
            pinned.release().map_err(|e| {
                DriverError::new(format!(
                    "cannot give the recording thread back its CPUs after pinning it to CPU {}: {e}",
                    pinned.cpu()
                ))
            })?;
        }
        Ok(())
    }
}

/// The `bpfrr record` option that attaches a program of this type live.
fn live_option(prog_type: u32) -> &'static str {
    match ProgType::from_number(prog_type) {
        Some(ProgType::Tracepoint) => "--tracepoint CAT:NAME",
        Some(ProgType::Kprobe) => "--uprobe PATH:SYMBOL",
        Some(ProgType::Tracing) => "--fentry FUNC or --tp-btf NAME",
        Some(ProgType::SchedAct) => "--tc IFACE:DIR",
        _ => "one of --xdp, --tc, --tracepoint, --raw-tracepoint, --uprobe, --fentry, --cgroup",
    }
}

/// Parses a packet given as hex (spaces, colons and a 0x prefix allowed).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    let digits: Vec<u8> = t
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!(
            "the packet hex has an odd number of digits ({}); give whole bytes",
            digits.len()
        ));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s = std::str::from_utf8(pair).unwrap_or("??");
            u8::from_str_radix(s, 16)
                .map_err(|_| format!("`{s}` at byte {i} of the packet hex is not a hex byte"))
        })
        .collect()
}

/// The packets of a classic pcap file (either byte order, µs or ns stamps).
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    bpfrr_trace::pcap::read_packets(bytes).map_err(|e| e.to_string())
}

/// Reads the packets of a pcap file.
pub fn read_pcap_file(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    read_pcap(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("0x0a0B ff:01\n").unwrap(), vec![10, 11, 255, 1]);
        assert!(parse_hex("abc").unwrap_err().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().contains("not a hex byte"));
    }

    #[test]
    fn pcap_parsing_and_errors() {
        let mut p = vec![];
        p.extend(0xa1b2_c3d4u32.to_le_bytes());
        p.extend([0u8; 20]);
        for pkt in [&[1u8, 2, 3][..], &[4u8][..]] {
            p.extend([0u8; 8]);
            p.extend((pkt.len() as u32).to_le_bytes());
            p.extend((pkt.len() as u32).to_le_bytes());
            p.extend(pkt);
        }
        assert_eq!(read_pcap(&p).unwrap(), vec![vec![1, 2, 3], vec![4]]);
        assert!(
            read_pcap(&p[..p.len() - 1])
                .unwrap_err()
                .contains("truncated")
        );
        assert!(read_pcap(&[0u8; 30]).unwrap_err().contains("not a pcap"));
        assert!(read_pcap(&[0u8; 3]).unwrap_err().contains("shorter"));
    }

    #[test]
    fn the_samples_pcaps_read() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/inputs");
        let pkts = read_pcap_file(&dir.join("xdp_fw.pcap")).unwrap();
        assert!(pkts.len() >= 10);
    }
}
