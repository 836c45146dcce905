//! Our VM (full speed and stepping with effects), the rbpf crate's
//! interpreter and the kernel's JIT, side by side on the same programs in
//! one run: `cargo bench -p bpfrr-recorder --bench vm_vs_kernel`.
//!
//! The kernel runs each program as XDP through BPF_PROG_TEST_RUN with
//! `repeat`, and its own `duration` (mean ns per run, syscall excluded) is
//! the time reported. That needs root; otherwise the kernel column is
//! skipped with a message. The workloads are shared with the replayer's
//! bench (`replayer/benches/workloads`). See BENCHMARKS.md.

#[path = "../../replayer/benches/workloads/mod.rs"]
mod workloads;

/// The kernel side (Linux only).
#[cfg(target_os = "linux")]
mod kernel {
    use std::os::fd::BorrowedFd;

    use crate::workloads::{KernelReference, MAP_VALUE_SIZE, Shape, Workload};
    use bpfrr_recorder::sys::{BpfMap, LoadedProgram, LogLevel, MapSpec, ProgLoad, SysError};
    use bpfrr_recorder::testrun::{RunInput, RunKind, run};

    const BPF_PROG_TYPE_XDP: u32 = 6;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;

    /// The loaded program of the current workload, its maps and its packet.
    #[derive(Default)]
    pub struct Kernel {
        prog: Option<LoadedProgram>,
        maps: Vec<BpfMap>,
        packet: Vec<u8>,
    }

    fn describe(e: SysError) -> String {
        match e {
            SysError::Rejected { errno, log } => {
                let tail: Vec<&str> = log.lines().rev().take(8).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!(
                    "the verifier rejected the program (errno {errno}):\n{}",
                    tail.join("\n")
                )
            }
            e => e.to_string(),
        }
    }

    impl KernelReference for Kernel {
        fn load(&mut self, w: &Workload) -> Result<u32, String> {
            self.prog = None;
            self.maps = match w.shape {
                Shape::MapValue => vec![
                    BpfMap::create(&MapSpec {
                        map_type: BPF_MAP_TYPE_ARRAY,
                        key_size: 4,
                        value_size: MAP_VALUE_SIZE,
                        max_entries: 1,
                        name: "values".into(),
                        ..MapSpec::default()
                    })
                    .map_err(describe)?,
                ],
                Shape::Loop | Shape::Packet => Vec::new(),
            };
            let fds: Vec<BorrowedFd<'_>> = self.maps.iter().map(|m| m.as_fd()).collect();
            let mut load = ProgLoad::new(BPF_PROG_TYPE_XDP, &w.xdp);
            load.name = "bpfrr_bench";
            load.log_level = LogLevel::BRIEF;
            load.fd_array = &fds;
            let prog = load.load().map_err(describe)?;
            self.packet = w.packet.clone();
            self.prog = Some(prog);
            // One run on the fresh maps, to compare with the other engines.
            let out = self.run(1)?;
            Ok(out.0)
        }

        fn mean_ns(&mut self, repeat: u32) -> Result<u32, String> {
            Ok(self.run(repeat)?.1)
        }
    }

    impl Kernel {
        /// (retval, mean ns per run) of `repeat` runs.
        fn run(&self, repeat: u32) -> Result<(u32, u32), String> {
            let prog = self.prog.as_ref().ok_or("no program is loaded")?;
            let out = run(
                &prog.fd,
                RunKind::Xdp,
                RunInput::Packet {
                    frame: &self.packet,
                    ctx: None,
                },
                repeat,
            )
            .map_err(describe)?;
            Ok((out.retval, out.duration_ns))
        }
    }
}

#[cfg(target_os = "linux")]
/// Whether this process runs as root (effective uid 0, from /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
            .unwrap_or(false)
    })
}

fn main() {
    let mut c = workloads::criterion();
    #[cfg(target_os = "linux")]
    let mut kernel = kernel::Kernel::default();
    #[cfg(target_os = "linux")]
    let reference: Option<&mut dyn workloads::KernelReference> = if is_root() {
        Some(&mut kernel)
    } else {
        println!(
            "kernel reference skipped: BPF_PROG_TEST_RUN needs root (run the bench with sudo)"
        );
        None
    };
    #[cfg(not(target_os = "linux"))]
    let reference: Option<&mut dyn workloads::KernelReference> = {
        println!("kernel reference skipped: BPF_PROG_TEST_RUN exists only on Linux");
        None
    };
    let rows = workloads::bench_all(&mut c, reference);
    c.final_summary();
    workloads::print_summary(&rows);
}
