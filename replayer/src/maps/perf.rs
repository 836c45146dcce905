//! Perf event array (`perf_event_array`) as a sink for
//! `bpf_perf_event_output`.
//!
//! The model assumes userspace opened one perf event per CPU at the index
//! of that CPU (what libbpf's perf_buffer does), so an output to the
//! current CPU succeeds, an index past `max_entries` is `-E2BIG`, and an
//! index naming another CPU is `-EOPNOTSUPP` as in the kernel.

use super::MapError;

/// `BPF_F_INDEX_MASK` / `BPF_F_CURRENT_CPU` of the output flags.
pub const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
pub const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerfOutput {
    pub cpu: u32,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct PerfEventArrayModel {
    max_entries: u32,
    outputs: Vec<PerfOutput>,
    /// Bytes of `outputs`, for the models' memory budget.
    bytes: u64,
}

impl PerfEventArrayModel {
    pub fn new(max_entries: u32) -> Self {
        PerfEventArrayModel {
            max_entries,
            outputs: Vec::new(),
            bytes: 0,
        }
    }

    /// Delivers `data` to the event at `flags & BPF_F_INDEX_MASK` (the
    /// caller has already rejected other flag bits).
    pub fn output(&mut self, flags: u64, cpu: u32, data: Vec<u8>) -> Result<(), MapError> {
        let index = flags & BPF_F_INDEX_MASK;
        let index = if index == BPF_F_CURRENT_CPU {
            cpu as u64
        } else {
            index
        };
        if index >= self.max_entries as u64 {
            return Err(MapError::TooBig);
        }
        if index != cpu as u64 {
            return Err(MapError::Unsupported {
                map_type: "perf_event_array",
                op: "output to another CPU's event",
            });
        }
        self.bytes += data.len() as u64;
        self.outputs.push(PerfOutput { cpu, data });
        Ok(())
    }

    /// Takes the outputs delivered so far.
    pub fn drain(&mut self) -> Vec<PerfOutput> {
        self.bytes = 0;
        std::mem::take(&mut self.outputs)
    }

    /// Bytes the outputs not yet drained hold.
    pub fn footprint(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_follow_index_rules() {
        let mut p = PerfEventArrayModel::new(2);
        p.output(BPF_F_CURRENT_CPU, 1, vec![1]).unwrap();
        p.output(1, 1, vec![2]).unwrap();
        assert_eq!(p.output(2, 1, vec![3]), Err(MapError::TooBig));
        assert_eq!(p.output(0, 1, vec![3]).unwrap_err().errno(), 95);
        assert_eq!(
            p.drain(),
            vec![
                PerfOutput {
                    cpu: 1,
                    data: vec![1]
                },
                PerfOutput {
                    cpu: 1,
                    data: vec![2]
                }
            ]
        );
        assert!(p.drain().is_empty());
    }
}
