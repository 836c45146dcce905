//! The numeric open-coded iterator: the kfuncs `bpf_iter_num_new`,
//! `bpf_iter_num_next` and `bpf_iter_num_destroy` (what libbpf's `bpf_for`
//! and `bpf_repeat` expand to), carried out on the VM's memory exactly as
//! the kernel does (`kernel/bpf/bpf_iter.c`).
//!
//! The iterator is 8 bytes of the program's own memory (a stack slot,
//! `struct bpf_iter_num`), which the kernel reads as
//! `struct bpf_iter_num_kern { int cur; int end; }`. `next` returns a
//! pointer to `cur`, so in the VM it is the VM address of the iterator,
//! never a kernel address. The kfuncs write the iterator through
//! [`HelperCall::write`], so a session's undo restores it.
//!
//! Kfuncs are known by name: BTF ids differ from one kernel to the next.

pub use crate::maps::errno::{E2BIG, EINVAL};
use crate::vm::{Fault, HelperCall};

/// The kernel's cap on the length of a range (`BPF_MAX_LOOPS`, 8 Mi), as
/// for `bpf_loop`.
pub const BPF_MAX_LOOPS: i64 = 8 * 1024 * 1024;

/// Size of `struct bpf_iter_num` (and of the kernel's view of it).
pub const ITER_SIZE: usize = 8;

/// One of the three kfuncs of the numeric iterator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IterNumKfunc {
    New,
    Next,
    Destroy,
}

impl IterNumKfunc {
    /// The kfunc called `name`, if it is one of the three.
    pub fn from_name(name: &str) -> Option<IterNumKfunc> {
        match name {
            "bpf_iter_num_new" => Some(IterNumKfunc::New),
            "bpf_iter_num_next" => Some(IterNumKfunc::Next),
            "bpf_iter_num_destroy" => Some(IterNumKfunc::Destroy),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IterNumKfunc::New => "bpf_iter_num_new",
            IterNumKfunc::Next => "bpf_iter_num_next",
            IterNumKfunc::Destroy => "bpf_iter_num_destroy",
        }
    }
}

/// `struct bpf_iter_num_kern`: the value `next` hands out, and the end
/// of the range (exclusive). Both zero: not initialised, or drained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IterNumState {
    pub cur: i32,
    pub end: i32,
}

impl IterNumState {
    pub fn from_bytes(b: [u8; ITER_SIZE]) -> IterNumState {
        IterNumState {
            cur: i32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            end: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_bytes(self) -> [u8; ITER_SIZE] {
        let mut b = [0; ITER_SIZE];
        b[..4].copy_from_slice(&self.cur.to_le_bytes());
        b[4..].copy_from_slice(&self.end.to_le_bytes());
        b
    }
}

/// `bpf_iter_num_new(it, start, end)`: the int it returns (0, `-EINVAL`
/// for `start > end`, `-E2BIG` for a range longer than
/// [`BPF_MAX_LOOPS`]) and the iterator it leaves.
pub fn new(start: i32, end: i32) -> (i32, IterNumState) {
    // start == end is an empty range: the first next returns NULL.
    if start > end {
        return (-EINVAL, IterNumState::default());
    }
    // In 64 bits, so INT_MIN..INT_MAX does not overflow.
    if i64::from(end) - i64::from(start) > BPF_MAX_LOOPS {
        return (-E2BIG, IterNumState::default());
    }
    // The first next moves cur to start; start - 1 wraps for INT_MIN as in
    // the kernel (built with -fno-strict-overflow).
    let state = IterNumState {
        cur: start.wrapping_sub(1),
        end,
    };
    (0, state)
}

/// `bpf_iter_num_next(it)`: whether it returns a pointer to `cur` (false:
/// NULL, the range is done or was never valid) and the iterator it leaves.
pub fn next(s: IterNumState) -> (bool, IterNumState) {
    // `(s64)(s->cur + 1) >= s->end`: the int addition wraps, then widens.
    if i64::from(s.cur.wrapping_add(1)) >= i64::from(s.end) {
        return (false, IterNumState::default());
    }
    let state = IterNumState {
        cur: s.cur.wrapping_add(1),
        end: s.end,
    };
    (true, state)
}

/// Carries out `kfunc` on the iterator r1 points to, in the VM's memory,
/// and returns r0: `new`'s int as the kernel leaves it in r0 (zero-extended
/// from 32 bits), `next`'s pointer (the VM address of the iterator, or 0),
/// 0 for `destroy` (void).
pub fn call(kfunc: IterNumKfunc, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    let it = call.arg(1);
    match kfunc {
        IterNumKfunc::New => {
            // The `int` arguments are the low 32 bits of r2 and r3.
            let (ret, state) = new(call.arg(2) as u32 as i32, call.arg(3) as u32 as i32);
            call.write(it, &state.to_bytes())?;
            Ok(u64::from(ret as u32))
        }
        IterNumKfunc::Next => {
            let bytes = call.read(it, ITER_SIZE)?;
            let mut raw = [0; ITER_SIZE];
            raw.copy_from_slice(bytes);
            let (more, state) = next(IterNumState::from_bytes(raw));
            call.write(it, &state.to_bytes())?;
            Ok(if more { it } else { 0 })
        }
        IterNumKfunc::Destroy => {
            call.write(it, &IterNumState::default().to_bytes())?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values `next` hands out for `new(start, end)`, at most `cap`.
    fn values(start: i32, end: i32, cap: usize) -> (i32, Vec<i32>) {
        let (ret, mut s) = new(start, end);
        let mut out = Vec::new();
        while out.len() < cap {
            let (more, t) = next(s);
            s = t;
            if !more {
                assert_eq!(s, IterNumState::default(), "drained leaves zeros");
                break;
            }
            out.push(s.cur);
        }
        (ret, out)
    }

    #[test]
    fn a_range_yields_start_to_end_exclusive() {
        assert_eq!(values(0, 3, 10), (0, vec![0, 1, 2]));
        assert_eq!(values(-2, 1, 10), (0, vec![-2, -1, 0]));
        assert_eq!(new(5, 9).1, IterNumState { cur: 4, end: 9 });
    }

    #[test]
    fn start_equal_to_end_is_an_empty_range_not_an_error() {
        assert_eq!(values(7, 7, 10), (0, vec![]));
        assert_eq!(new(7, 7).1, IterNumState { cur: 6, end: 7 });
    }

    #[test]
    fn start_after_end_is_einval_and_zeroes_the_iterator() {
        assert_eq!(new(5, 2), (-EINVAL, IterNumState::default()));
        assert_eq!(values(5, 2, 10), (-EINVAL, vec![]));
        assert_eq!(values(i32::MAX, i32::MIN, 10), (-EINVAL, vec![]));
    }

    #[test]
    fn ranges_longer_than_bpf_max_loops_are_e2big() {
        let max = BPF_MAX_LOOPS as i32;
        assert_eq!(new(0, max).0, 0, "exactly BPF_MAX_LOOPS is allowed");
        assert_eq!(new(0, max + 1), (-E2BIG, IterNumState::default()));
        assert_eq!(new(i32::MIN, i32::MAX).0, -E2BIG, "no overflow");
        assert_eq!(new(-1, max).0, -E2BIG);
    }

    #[test]
    fn ranges_at_the_ends_of_int_wrap_as_the_kernel_does() {
        // cur = INT_MIN - 1 wraps to INT_MAX; the first next wraps back.
        assert_eq!(
            values(i32::MIN, i32::MIN + 3, 10),
            (0, vec![i32::MIN, i32::MIN + 1, i32::MIN + 2])
        );
        assert_eq!(
            values(i32::MAX - 2, i32::MAX, 10),
            (0, vec![i32::MAX - 2, i32::MAX - 1])
        );
        assert_eq!(values(i32::MAX, i32::MAX, 10), (0, vec![]));
        // A forged state with cur == end == INT_MAX: cur + 1 wraps to
        // INT_MIN, which is below end, so the kernel hands out INT_MIN.
        let forged = IterNumState {
            cur: i32::MAX,
            end: i32::MAX,
        };
        assert_eq!(
            next(forged),
            (
                true,
                IterNumState {
                    cur: i32::MIN,
                    end: i32::MAX
                }
            )
        );
    }

    #[test]
    fn a_zeroed_iterator_is_drained() {
        assert!(!next(IterNumState::default()).0);
    }

    #[test]
    fn the_state_is_cur_then_end_little_endian() {
        let s = IterNumState { cur: -1, end: 258 };
        assert_eq!(s.to_bytes(), [0xff, 0xff, 0xff, 0xff, 2, 1, 0, 0]);
        assert_eq!(IterNumState::from_bytes(s.to_bytes()), s);
    }

    use crate::vm::{Memory, RegionKind, address};

    fn buffer(mem: &mut Memory, bytes: Vec<u8>, writable: bool) -> u64 {
        address(
            mem.alloc(RegionKind::HelperBuffer { helper: 0 }, bytes, writable),
            0,
        )
    }

    #[test]
    fn calls_work_on_the_vm_memory_and_next_points_at_it() {
        let mut mem = Memory::default();
        let it = buffer(&mut mem, vec![0xaa; 8], true);
        let mut c = HelperCall::detached(&mut mem, [it, 1, 3, 0, 0]);
        assert_eq!(call(IterNumKfunc::New, &mut c), Ok(0));
        assert_eq!(c.read(it, 8).unwrap(), [0, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(call(IterNumKfunc::Next, &mut c), Ok(it));
        assert_eq!(c.read_u32(it), Ok(1));
        // Only the low 32 bits of r2 and r3 are the ints.
        let mut c = HelperCall::detached(&mut mem, [it, 0xffff_ffff_0000_0005, 2, 0, 0]);
        assert_eq!(call(IterNumKfunc::New, &mut c), Ok((-EINVAL) as u32 as u64));
        assert_eq!(c.read(it, 8).unwrap(), [0; 8]);
        let mut c = HelperCall::detached(&mut mem, [it, 0, 0, 0, 0]);
        assert_eq!(call(IterNumKfunc::Next, &mut c), Ok(0));
    }

    #[test]
    fn bad_iterator_pointers_fault_and_never_panic() {
        let mut mem = Memory::default();
        let short = buffer(&mut mem, vec![0; 4], true);
        let read_only = buffer(&mut mem, vec![0; 8], false);
        for (it, what) in [
            (0, "NULL"),
            (0x1234, "a scalar"),
            (short, "4 bytes"),
            (short + 2, "past the end"),
        ] {
            for k in [IterNumKfunc::New, IterNumKfunc::Next, IterNumKfunc::Destroy] {
                let mut c = HelperCall::detached(&mut mem, [it, 0, 3, 0, 0]);
                assert!(call(k, &mut c).is_err(), "{} on {what}", k.name());
            }
        }
        let mut c = HelperCall::detached(&mut mem, [read_only, 0, 3, 0, 0]);
        assert!(call(IterNumKfunc::New, &mut c).is_err(), "read-only memory");
        assert_eq!(c.read(read_only, 8).unwrap(), [0; 8], "unchanged");
    }

    #[test]
    fn names_map_to_the_three_kfuncs_and_nothing_else() {
        for k in [IterNumKfunc::New, IterNumKfunc::Next, IterNumKfunc::Destroy] {
            assert_eq!(IterNumKfunc::from_name(k.name()), Some(k));
        }
        assert_eq!(IterNumKfunc::from_name("bpf_iter_task_new"), None);
        assert_eq!(IterNumKfunc::from_name("bpf_iter_num"), None);
    }
}
