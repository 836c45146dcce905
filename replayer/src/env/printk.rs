//! Formatting of `bpf_trace_printk`, `bpf_trace_vprintk` and `bpf_snprintf`
//! as the kernel does it (`bpf_bprintf_prepare` then `bstr_printf`).
//!
//! Accepted conversions, as in the kernel: `%%`, `%d %i %u %x %X` with an
//! optional `l`/`ll` size, `%c`, `%s`, `%p` with `K x B s ks us i4 I4 i6
//! I6`, flags `0 + - space` and a width (no precision). Anything else, too
//! many conversions, or a format not NUL-terminated inside its size, is
//! `-EINVAL`. Differences: plain `%p`/`%pK` print the raw address like
//! `%px` (the kernel prints a hashed or zeroed pointer), and `%pB`/`%pS`
//! print the address in hex (no kernel symbols here).

use crate::maps::errno::EINVAL;

/// `MAX_BPRINTF_VARARGS`.
pub const MAX_ARGS: usize = 12;
/// `MAX_BPRINTF_BUF`: the size of trace_printk's output buffer.
pub const MAX_OUTPUT: usize = 1024;
/// The longest string a `%s` reads.
const MAX_STR: usize = 1024;

/// Reads memory for `%s` and `%pI4`-style arguments: `(address, length)`
/// to the bytes, or None when the address is not readable.
pub type MemoryReader<'a> = dyn FnMut(u64, usize) -> Option<Vec<u8>> + 'a;

#[derive(Clone, Copy)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    if s.len() >= spec.width {
        return s;
    }
    let fill = spec.width - s.len();
    if spec.left {
        return s + &" ".repeat(fill);
    }
    if spec.zero && numeric {
        let (sign, digits) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s),
        };
        return sign + &"0".repeat(fill) + &digits;
    }
    " ".repeat(fill) + &s
}

fn read_c_string(read: &mut MemoryReader<'_>, addr: u64) -> Vec<u8> {
    // Read byte by byte chunks until NUL or an unreadable address.
    let mut out = Vec::new();
    while out.len() < MAX_STR {
        match read(addr.wrapping_add(out.len() as u64), 1) {
            Some(b) if b[0] != 0 => out.push(b[0]),
            _ => break,
        }
    }
    out
}

fn ipv6_groups(b: &[u8]) -> [u16; 8] {
    let mut g = [0u16; 8];
    for (i, x) in g.iter_mut().enumerate() {
        *x = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
    }
    g
}

/// RFC 5952 compressed form (what `%pI6c` prints).
fn ipv6_compressed(g: &[u16; 8]) -> String {
    let (mut best, mut best_len, mut i) = (None, 1, 0);
    while i < 8 {
        if g[i] == 0 {
            let j = (i..8).find(|&j| g[j] != 0).unwrap_or(8);
            if j - i > best_len {
                best = Some(i);
                best_len = j - i;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    let hex = |r: &[u16]| {
        r.iter()
            .map(|x| format!("{x:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    match best {
        Some(s) => format!("{}::{}", hex(&g[..s]), hex(&g[s + best_len..])),
        None => hex(g),
    }
}

/// Formats `fmt` (the bytes the program passed, with their NUL) with
/// `args` (each a u64 as the program passed it). Returns the text, or the
/// errno the helper returns.
pub fn format(fmt: &[u8], args: &[u64], read: &mut MemoryReader<'_>) -> Result<String, i32> {
    let end = fmt.iter().position(|&b| b == 0).ok_or(EINVAL)?;
    let fmt = &fmt[..end];
    if args.len() > MAX_ARGS {
        return Err(EINVAL);
    }
    let mut out = String::new();
    let mut next_arg = 0usize;
    let mut i = 0;
    while i < fmt.len() {
        let c = fmt[i];
        if !(c.is_ascii_graphic() || c.is_ascii_whitespace() || c == b' ') {
            return Err(EINVAL);
        }
        if c != b'%' {
            out.push(c as char);
            i += 1;
            continue;
        }
        i += 1;
        if fmt.get(i) == Some(&b'%') {
            out.push('%');
            i += 1;
            continue;
        }
        if next_arg >= args.len() {
            return Err(EINVAL);
        }
        let arg = args[next_arg];
        next_arg += 1;
        let mut spec = Spec {
            left: false,
            zero: false,
            plus: false,
            space: false,
            width: 0,
        };
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => spec.left = true,
                b'0' => spec.zero = true,
                b'+' => spec.plus = true,
                b' ' => spec.space = true,
                _ => break,
            }
            i += 1;
        }
        while let Some(&d) = fmt.get(i).filter(|d| d.is_ascii_digit()) {
            spec.width = spec.width * 10 + (d - b'0') as usize;
            i += 1;
        }
        let conv = *fmt.get(i).ok_or(EINVAL)?;
        match conv {
            b'c' => {
                out += &pad(((arg as u8) as char).to_string(), &spec, false);
                i += 1;
            }
            b's' => {
                let s = read_c_string(read, arg);
                out += &pad(String::from_utf8_lossy(&s).into_owned(), &spec, false);
                i += 1;
            }
            b'p' => {
                i += 1;
                let next = fmt.get(i).copied();
                let next2 = fmt.get(i + 1).copied();
                let text = match (next, next2) {
                    (Some(b'i' | b'I'), Some(b'4')) => {
                        i += 2;
                        let b = read(arg, 4).unwrap_or_default();
                        if b.len() < 4 {
                            "(einval)".to_string()
                        } else if next == Some(b'i') {
                            format!("{:03}.{:03}.{:03}.{:03}", b[0], b[1], b[2], b[3])
                        } else {
                            format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
                        }
                    }
                    (Some(b'i' | b'I'), Some(b'6')) => {
                        i += 2;
                        let compressed = next == Some(b'I') && fmt.get(i) == Some(&b'c');
                        if compressed {
                            i += 1;
                        }
                        match read(arg, 16) {
                            Some(b) if b.len() == 16 => {
                                let g = ipv6_groups(&b);
                                if compressed {
                                    ipv6_compressed(&g)
                                } else if next == Some(b'i') {
                                    g.iter().map(|x| format!("{x:04x}")).collect()
                                } else {
                                    g.iter()
                                        .map(|x| format!("{x:04x}"))
                                        .collect::<Vec<_>>()
                                        .join(":")
                                }
                            }
                            _ => "(einval)".to_string(),
                        }
                    }
                    (Some(b'k' | b'u'), Some(b's')) => {
                        i += 2;
                        String::from_utf8_lossy(&read_c_string(read, arg)).into_owned()
                    }
                    (Some(b'K' | b'x' | b'B' | b'S'), _) => {
                        i += 1;
                        format!("{arg:016x}")
                    }
                    (Some(c), _) if c.is_ascii_alphanumeric() => return Err(EINVAL),
                    _ => format!("{arg:016x}"),
                };
                out += &pad(text, &spec, false);
            }
            _ => {
                let mut long = 0;
                while fmt.get(i) == Some(&b'l') && long < 2 {
                    long += 1;
                    i += 1;
                }
                let conv = *fmt.get(i).ok_or(EINVAL)?;
                i += 1;
                let wide = long > 0; // long and long long are 64-bit on x86-64
                let text = match conv {
                    b'd' | b'i' => {
                        let v = if wide {
                            arg as i64
                        } else {
                            arg as u32 as i32 as i64
                        };
                        let sign = if v < 0 {
                            ""
                        } else if spec.plus {
                            "+"
                        } else if spec.space {
                            " "
                        } else {
                            ""
                        };
                        format!("{sign}{v}")
                    }
                    b'u' => {
                        let v = if wide { arg } else { arg as u32 as u64 };
                        v.to_string()
                    }
                    b'x' | b'X' => {
                        let v = if wide { arg } else { arg as u32 as u64 };
                        if conv == b'x' {
                            format!("{v:x}")
                        } else {
                            format!("{v:X}")
                        }
                    }
                    _ => return Err(EINVAL),
                };
                out += &pad(text, &spec, true);
            }
        }
    }
    Ok(out)
}

/// `bstr_printf` into a buffer of `size` bytes: the text cut to fit with
/// its NUL, and the length the whole text has (what the helpers return).
pub fn into_buffer(text: &str, size: usize) -> (Vec<u8>, usize) {
    let bytes = text.as_bytes();
    if size == 0 {
        return (Vec::new(), bytes.len());
    }
    let n = bytes.len().min(size - 1);
    let mut out = bytes[..n].to_vec();
    out.push(0);
    (out, bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_memory() -> Box<MemoryReader<'static>> {
        Box::new(|_, _| None)
    }

    fn fmt(f: &str, args: &[u64]) -> Result<String, i32> {
        let mut b = f.as_bytes().to_vec();
        b.push(0);
        format(&b, args, &mut *no_memory())
    }

    #[test]
    fn integers() {
        assert_eq!(
            fmt("%d %i %u", &[u64::MAX, 5, u64::MAX]).unwrap(),
            "-1 5 4294967295"
        );
        assert_eq!(
            fmt("%ld %llu", &[u64::MAX, u64::MAX]).unwrap(),
            "-1 18446744073709551615"
        );
        assert_eq!(
            fmt("%x %X %lx", &[0xabcdef, 0xabcdef, 0x1_0000_0000]).unwrap(),
            "abcdef ABCDEF 100000000"
        );
        assert_eq!(
            fmt("[%5d|%-4u|%04x|%+d]", &[42, 7, 0xa, 3]).unwrap(),
            "[   42|7   |000a|+3]"
        );
        assert_eq!(fmt("%05d", &[(-42i64) as u64]).unwrap(), "-0042");
        assert_eq!(fmt("100%% %c", &[b'x' as u64]).unwrap(), "100% x");
    }

    #[test]
    fn rejects_what_the_kernel_rejects() {
        assert_eq!(
            fmt("%d %d", &[1]),
            Err(EINVAL),
            "more conversions than arguments"
        );
        assert_eq!(fmt("%f", &[1]), Err(EINVAL));
        assert_eq!(fmt("%.3d", &[1]), Err(EINVAL), "no precision");
        assert_eq!(fmt("%pZ", &[1]), Err(EINVAL));
        assert_eq!(fmt("\x01", &[]), Err(EINVAL), "non-printable");
        assert_eq!(format(b"no nul", &[], &mut *no_memory()), Err(EINVAL));
    }

    #[test]
    fn strings_and_addresses_from_memory() {
        let mem: Vec<u8> =
            b"hello\0\x0a\x00\x00\x01\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01".to_vec();
        let base = 0x1000u64;
        let mut read = |addr: u64, len: usize| {
            let o = addr.checked_sub(base)? as usize;
            mem.get(o..o + len).map(|s| s.to_vec())
        };
        let f = b"%s %pI4 %pi4 %pI6 %pI6c %s|\0";
        let out = format(
            f,
            &[base, base + 6, base + 6, base + 10, base + 10, 0x9999],
            &mut read,
        )
        .unwrap();
        assert_eq!(
            out,
            "hello 10.0.0.1 010.000.000.001 2001:0db8:0000:0000:0000:0000:0000:0001 2001:db8::1 |"
        );
        assert_eq!(
            format(b"%px\0", &[0xff], &mut read).unwrap(),
            "00000000000000ff"
        );
    }

    #[test]
    fn buffer_truncation() {
        assert_eq!(into_buffer("hello", 4), (b"hel\0".to_vec(), 5));
        assert_eq!(into_buffer("hi", 8), (b"hi\0".to_vec(), 2));
        assert_eq!(into_buffer("hi", 0), (vec![], 2));
    }
}
