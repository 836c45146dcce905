//! The flush program's userspace side: loading it for bpfrr's maps and
//! running it on CPUs. The probes batch an outermost invocation's records
//! in the CPU's scratch buffer (see `crate::wire`, batches); the recorder
//! flushes after every test run, on every live poll tick and before the
//! last drain, so that no invocation waits for a batch to fill.

use std::os::fd::{AsRawFd, OwnedFd};

use bpfrr_trace::catalog::ProgType;

use crate::instrument::probes::flush;
use crate::sys::{BpfMap, ProgLoad, SysError, TestRunAttr, possible_cpus, test_run};

/// The loaded flush program (`crate::instrument::probes::flush`).
#[derive(Debug)]
pub struct FlushProgram {
    pub fd: OwnedFd,
}

impl FlushProgram {
    /// Builds and loads the flush program for these maps; a rejection is a
    /// bpfrr bug and carries the verifier log.
    pub fn load(ringbuf: &BpfMap, state: &BpfMap, scratch: u32) -> Result<FlushProgram, SysError> {
        let insns = flush(ringbuf.fd.as_raw_fd(), state.fd.as_raw_fd(), scratch).finish();
        let mut load = ProgLoad::new(ProgType::RawTracepoint as u32, &insns);
        load.name = "bpfrr_flush";
        load.license = "GPL";
        let loaded = load.load()?;
        Ok(FlushProgram { fd: loaded.fd })
    }

    /// Runs the flush on each of `cpus` (BPF_F_TEST_RUN_ON_CPU: on the
    /// calling CPU directly, on another in an interrupt). A CPU that went
    /// offline is skipped.
    pub fn run_on_cpus(&self, cpus: impl IntoIterator<Item = u32>) -> Result<(), SysError> {
        for cpu in cpus {
            let attr = TestRunAttr {
                flags: BPF_F_TEST_RUN_ON_CPU,
                cpu,
                ..TestRunAttr::default()
            };
            match test_run(&self.fd, &attr) {
                Ok(_) => {}
                Err(e) if e.errno() == Some(libc::ENXIO) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// `BPF_F_TEST_RUN_ON_CPU`: run the test on the CPU in `cpu`.
const BPF_F_TEST_RUN_ON_CPU: u32 = 1;

/// The CPUs online now (`/sys/devices/system/cpu/online`, "0-3,5"); all
/// possible CPUs when it cannot be read.
pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_ranges(&s))
        .unwrap_or_else(|| (0..possible_cpus() as u32).collect())
}

/// "0-3,5" → [0, 1, 2, 3, 5]; None when malformed.
fn parse_cpu_ranges(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let a: u32 = part.parse().ok()?;
                (a, a)
            }
        };
        if b < a || b - a > 1 << 16 {
            return None;
        }
        out.extend(a..=b);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ranges_parse() {
        assert_eq!(parse_cpu_ranges("0-3,5\n"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_ranges("0"), Some(vec![0]));
        assert_eq!(parse_cpu_ranges("3-1"), None);
        assert_eq!(parse_cpu_ranges("x"), None);
    }
}
