//! The calling thread's CPU: which one it runs on, pinning it to one and
//! giving its CPUs back; and the clock the probes' time stamps use.
//!
//! A test-run recording pins its thread so that every invocation runs on
//! one known CPU, in the order the recorder calls it (see
//! `crate::record::CaptureHints::pinned_cpu`).

use std::io;

/// The CPU the calling thread runs on now.
pub fn current_cpu() -> Option<u32> {
    // SAFETY: sched_getcpu takes no arguments and only returns a number.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).ok()
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of `bpf_ktime_get_ns`, so
/// times stamped here and in the kernel compare.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration;
    // CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// The calling thread pinned to one CPU; [`Pinned::release`] (or drop)
/// gives it back the CPUs it was allowed before.
#[derive(Debug)]
pub struct Pinned {
    cpu: u32,
    before: Option<libc::cpu_set_t>,
}

impl Pinned {
    /// Pins the calling thread to the CPU it runs on now.
    pub fn here() -> io::Result<Pinned> {
        let mut before = empty_set();
        // SAFETY: `before` is a valid, writable cpu_set_t of the size given;
        // pid 0 is the calling thread.
        let got = unsafe {
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut before)
        };
        if got != 0 {
            return Err(io::Error::last_os_error());
        }
        let cpu = current_cpu().ok_or_else(io::Error::last_os_error)?;
        let mut only = empty_set();
        // SAFETY: CPU_SET writes one bit of `only`; `cpu` came from the
        // kernel, so it is below CPU_SETSIZE on any machine glibc supports.
        unsafe { libc::CPU_SET(cpu as usize, &mut only) };
        set_affinity(&only)?;
        Ok(Pinned {
            cpu,
            before: Some(before),
        })
    }

    /// The CPU the thread is pinned to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }

    /// Gives the thread back its CPUs (done once; drop does it too).
    pub fn release(&mut self) -> io::Result<()> {
        match self.before.take() {
            Some(before) => set_affinity(&before),
            None => Ok(()),
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

fn empty_set() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is the empty set.
    unsafe { std::mem::zeroed() }
}

fn set_affinity(set: &libc::cpu_set_t) -> io::Result<()> {
    // SAFETY: `set` is a valid cpu_set_t of the size given; pid 0 is the
    // calling thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_keeps_the_thread_on_its_cpu_and_release_gives_the_cpus_back() {
        // A thread of its own: the test harness's threads stay as they are.
        std::thread::spawn(|| {
            let allowed = std::thread::available_parallelism().map_or(1, |n| n.get());
            let mut pinned = Pinned::here().expect("a thread can pin itself to its own CPU");
            assert_eq!(std::thread::available_parallelism().unwrap().get(), 1);
            for _ in 0..1000 {
                std::thread::yield_now();
                assert_eq!(current_cpu(), Some(pinned.cpu()));
            }
            pinned.release().unwrap();
            assert_eq!(std::thread::available_parallelism().unwrap().get(), allowed);
            // Released once: a second release (and the drop) change nothing.
            pinned.release().unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_monotonic_clock_is_the_kernels_and_goes_forward() {
        let a = monotonic_ns();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = monotonic_ns();
        assert!(b >= a + 2_000_000, "{a} then {b}");
    }
}
