//! The helpers the public conformance vectors assume (uBPF's test helpers
//! 0-5; bpf_conformance uses only 5). Used by the conformance tests and by
//! `bpfrr exec` in its bpf_conformance plugin mode; not a kernel model.

use super::env::{Env, HelperCall, HelperOutcome};
use super::fault::{Fault, FaultKind};

/// uBPF's test helpers: 0 `gather_bytes(a..e)`, 1 `memfrob(p, n)`,
/// 2 `no_op`, 3 `sqrti(x)`, 4 `strcmp_ext(a, b)`, 5 `unwind(a) -> a`
/// (returning 0 ends the program with r0 = 0).
#[derive(Clone, Copy, Debug, Default)]
pub struct UbpfHelpers;

/// Longest string `strcmp_ext` reads before giving up.
const MAX_CSTR: usize = 1 << 16;

fn cstr(call: &HelperCall<'_>, addr: u64) -> Result<Vec<u8>, Fault> {
    let mut out = Vec::new();
    while out.len() < MAX_CSTR {
        let b = call.read(addr.wrapping_add(out.len() as u64), 1)?[0];
        if b == 0 {
            return Ok(out);
        }
        out.push(b);
    }
    Err(call.error(4, "string is not NUL-terminated within 64 KiB"))
}

fn isqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    let mut r = (x as f64).sqrt() as u64;
    while r.checked_mul(r).is_none_or(|sq| sq > x) {
        r -= 1;
    }
    while (r + 1).checked_mul(r + 1).is_some_and(|sq| sq <= x) {
        r += 1;
    }
    r
}

impl Env for UbpfHelpers {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        let [a, b, c, d, e] = call.args();
        Ok(match id {
            0 => HelperOutcome::Return(
                ((a & 0xff) << 32)
                    | ((b & 0xff) << 24)
                    | ((c & 0xff) << 16)
                    | ((d & 0xff) << 8)
                    | (e & 0xff),
            ),
            1 => {
                let bytes: Vec<u8> = call.read(a, b as usize)?.iter().map(|x| x ^ 42).collect();
                call.write(a, &bytes)?;
                HelperOutcome::Return(0)
            }
            2 => HelperOutcome::Return(0),
            3 => HelperOutcome::Return(isqrt(a)),
            4 => {
                let (s1, s2) = (cstr(call, a)?, cstr(call, b)?);
                HelperOutcome::Return(match s1.cmp(&s2) {
                    std::cmp::Ordering::Less => -1i64 as u64,
                    std::cmp::Ordering::Equal => 0,
                    std::cmp::Ordering::Greater => 1,
                })
            }
            5 if a == 0 => HelperOutcome::Exit(0),
            5 => HelperOutcome::Return(a),
            _ => return Err(call.fault(FaultKind::UnknownHelper { id })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::isqrt;

    #[test]
    fn integer_square_root_is_exact() {
        for (x, r) in [
            (0, 0),
            (1, 1),
            (3, 1),
            (4, 2),
            (15, 3),
            (16, 4),
            (u64::MAX, u32::MAX as u64),
        ] {
            assert_eq!(isqrt(x), r, "isqrt({x})");
        }
    }
}
