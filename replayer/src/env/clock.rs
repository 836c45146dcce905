//! A deterministic clock for `bpf_ktime_get_*_ns`: every read advances it
//! by a fixed step, so two runs of the same inputs see the same times and a
//! program measuring a duration sees a positive one.

/// Nanoseconds per jiffy at CONFIG_HZ=250: the resolution of the coarse clock.
pub const COARSE_TICK_NS: u64 = 4_000_000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    /// `CLOCK_MONOTONIC` at the first read.
    pub start_ns: u64,
    /// How far each read moves the clock.
    pub step_ns: u64,
    /// `CLOCK_BOOTTIME - CLOCK_MONOTONIC` (time spent suspended).
    pub suspended_ns: u64,
    /// `CLOCK_TAI - CLOCK_MONOTONIC`.
    pub tai_offset_ns: u64,
    reads: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(1_000_000_000, 1_000)
    }
}

impl Clock {
    pub fn new(start_ns: u64, step_ns: u64) -> Clock {
        Clock {
            start_ns,
            step_ns,
            suspended_ns: 0,
            tai_offset_ns: 1_700_000_000_000_000_000,
            reads: 0,
        }
    }

    /// The current monotonic time, then advance.
    fn tick(&mut self) -> u64 {
        let now = self
            .start_ns
            .wrapping_add(self.reads.wrapping_mul(self.step_ns));
        self.reads += 1;
        now
    }

    /// `bpf_ktime_get_ns` (CLOCK_MONOTONIC).
    pub fn monotonic_ns(&mut self) -> u64 {
        self.tick()
    }

    /// `bpf_ktime_get_boot_ns` (CLOCK_BOOTTIME).
    pub fn boot_ns(&mut self) -> u64 {
        self.tick().wrapping_add(self.suspended_ns)
    }

    /// `bpf_ktime_get_coarse_ns`: monotonic, at jiffy resolution.
    pub fn coarse_ns(&mut self) -> u64 {
        let t = self.tick();
        t - t % COARSE_TICK_NS
    }

    /// `bpf_ktime_get_tai_ns`.
    pub fn tai_ns(&mut self) -> u64 {
        self.tick().wrapping_add(self.tai_offset_ns)
    }

    /// `bpf_jiffies64`: monotonic time in ticks (INITIAL_JIFFIES ignored).
    pub fn jiffies(&mut self) -> u64 {
        self.tick() / COARSE_TICK_NS
    }

    /// Reads so far.
    pub fn reads(&self) -> u64 {
        self.reads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_deterministic_and_monotonic() {
        let mut a = Clock::new(5_000_000, 1000);
        let mut b = a.clone();
        let xs: Vec<u64> = (0..3).map(|_| a.monotonic_ns()).collect();
        assert_eq!(xs, vec![5_000_000, 5_001_000, 5_002_000]);
        assert_eq!(b.monotonic_ns(), 5_000_000);
        assert_eq!(a.coarse_ns(), 4_000_000);
        a.suspended_ns = 7;
        assert_eq!(a.boot_ns(), 5_004_007);
        assert_eq!(a.reads(), 5);
    }
}
