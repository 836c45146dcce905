//! The text printer: what batch mode prints and the UI's command line
//! shows. Plain text, gdb-like, no colours.

use std::fmt::Write as _;

use super::output::*;

/// `step 17, insn 23 (xdp_fw.bpf.c:88): if r1 > r2 goto +5`
/// (`insn 23 of tc_redirect_port` outside the first program).
pub fn place_line(p: &Place) -> String {
    let mut s = format!("step {}, insn {}", p.step, p.insn);
    if p.program != 0 {
        let _ = write!(s, " of {}", p.program_name);
    }
    if let (Some(f), Some(l)) = (&p.file, p.line) {
        let file = f.rsplit('/').next().unwrap_or(f);
        let _ = write!(s, " ({file}:{l})");
    }
    let _ = write!(s, ": {}", p.text);
    s
}

/// The source line under a place, gdb style (`88\t    if (x > y)`), if known.
fn source_line(p: &Place) -> Option<String> {
    Some(format!("{}\t{}", p.line?, p.source.as_deref()?))
}

/// Bytes hex string as `0x...` little-endian integer when at most 8 bytes, else spaced hex.
fn bytes_value(h: &str) -> String {
    let bytes: Vec<u8> = (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect();
    if !bytes.is_empty() && bytes.len() <= 8 {
        let mut a = [0u8; 8];
        a[..bytes.len()].copy_from_slice(&bytes);
        format!("{:#x}", u64::from_le_bytes(a))
    } else {
        spaced(h)
    }
}

fn spaced(h: &str) -> String {
    (0..h.len() / 2)
        .map(|i| &h[2 * i..2 * i + 2])
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn reason_line(r: &Reason) -> Option<String> {
    Some(match r {
        Reason::Done => return None,
        Reason::Breakpoint { id } => format!("breakpoint {id}"),
        Reason::Watchpoint { id, expr, old, new } => {
            let v = |x: &Option<String>| x.as_deref().map_or("unreadable".into(), bytes_value);
            format!("watchpoint {id}: {expr}: {} -> {}", v(old), v(new))
        }
        Reason::Exited { r0, name } => match name {
            Some(n) => format!("exited: r0 = {r0} ({n})"),
            None => format!("exited: r0 = {r0} ({r0:#x})"),
        },
        Reason::Fault { message } => format!("fault: {message}"),
        Reason::Divergence { message } => format!("divergence from the recording: {message}"),
        Reason::Start => "reached the start of the invocation".into(),
        Reason::Interrupted => "interrupted".into(),
    })
}

/// Offsets `place` (`pkt+14`, `fp-8`, `0x...`) by `k` bytes for dump rows.
fn offset_label(place: &str, addr: u64, k: usize) -> String {
    if k == 0 {
        return place.to_string();
    }
    if place.starts_with("0x") {
        return format!("{:#x}", addr.wrapping_add(k as u64));
    }
    let split = place.rfind(['+', '-']).filter(|&i| {
        i > 0 && place[i + 1..].chars().all(|c| c.is_ascii_digit()) && i + 1 < place.len()
    });
    let (base, off) = match split {
        Some(i) => (&place[..i], place[i..].parse::<i64>().unwrap_or(0)),
        None => (place, 0),
    };
    let o = off + k as i64;
    match o {
        0 => base.to_string(),
        o if o > 0 => format!("{base}+{o}"),
        o => format!("{base}{o}"),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "y" } else { "n" }
}

/// The text of an output, lines separated by `\n`, no trailing newline.
pub fn render(o: &Output) -> String {
    let mut out = String::new();
    let w = &mut out;
    match o {
        Output::Stopped(st) => {
            if let Some(r) = reason_line(&st.reason) {
                let _ = writeln!(w, "{r}");
            }
            let _ = writeln!(w, "{}", place_line(&st.place));
            if let Some(l) = source_line(&st.place) {
                let _ = writeln!(w, "{l}");
            }
        }
        Output::BreakpointSet(b) => {
            let _ = write!(w, "breakpoint {} at {}", b.id, b.location);
            let sites: Vec<String> = b.sites.iter().map(|(_, pc)| pc.to_string()).collect();
            let _ = write!(w, " (insn {})", sites.join(", "));
            if let Some(c) = &b.condition {
                let _ = write!(w, " if {c}");
            }
            let _ = writeln!(w);
        }
        Output::WatchpointSet(wp) => {
            let _ = writeln!(
                w,
                "watchpoint {}: {} ({}), now {}",
                wp.id,
                wp.expr,
                wp.watching,
                wp.value.as_deref().map_or("unreadable".into(), bytes_value)
            );
        }
        Output::Breakpoints { breakpoints } => {
            if breakpoints.is_empty() {
                let _ = writeln!(w, "no breakpoints");
            } else {
                let _ = writeln!(w, "id  enabled  hits  ignore  location");
            }
            for b in breakpoints {
                let _ = write!(
                    w,
                    "{:<3} {:<8} {:<5} {:<7} {}",
                    b.id,
                    yes(b.enabled),
                    b.hits,
                    b.ignore,
                    b.location
                );
                if let Some(c) = &b.condition {
                    let _ = write!(w, " if {c}");
                }
                let _ = writeln!(w);
            }
        }
        Output::Watchpoints { watchpoints } => {
            if watchpoints.is_empty() {
                let _ = writeln!(w, "no watchpoints");
            } else {
                let _ = writeln!(w, "id  enabled  hits  watching");
            }
            for x in watchpoints {
                let _ = writeln!(
                    w,
                    "{:<3} {:<8} {:<5} {} ({}) = {}",
                    x.id,
                    yes(x.enabled),
                    x.hits,
                    x.expr,
                    x.watching,
                    x.value.as_deref().map_or("unreadable".into(), bytes_value)
                );
            }
        }
        Output::Message { message } => {
            let _ = writeln!(w, "{message}");
        }
        Output::Value(v) => {
            let _ = writeln!(w, "{} = {}", v.expr, v.text);
        }
        Output::Memory(m) => {
            let per_row = 16usize.max(m.unit as usize);
            let bytes = m.bytes.len() / 2;
            let units_per_row = per_row / m.unit as usize;
            let width = (0..bytes.div_ceil(per_row))
                .map(|r| offset_label(&m.place, m.addr, r * per_row).len())
                .max()
                .unwrap_or(0);
            for (r, chunk) in m.units.chunks(units_per_row.max(1)).enumerate() {
                let label = offset_label(&m.place, m.addr, r * per_row);
                let _ = writeln!(w, "{label:<width$}:  {}", chunk.join(" "));
            }
            if bytes < m.requested as usize {
                let _ = writeln!(
                    w,
                    "({bytes} of {} bytes: the region ends there)",
                    m.requested
                );
            }
        }
        Output::Origin(og) => {
            let _ = writeln!(w, "origin of {} ({}):", og.expr, og.location);
            for l in &og.chain {
                let _ = writeln!(w, "  {}    <- {}", place_line(&l.place), l.what);
            }
            let _ = writeln!(w, "  => {}", og.end);
        }
        Output::Registers { registers } => {
            for r in registers {
                let _ = write!(w, "{:<4} {:#018x}  {}", r.name, r.value, r.value as i64);
                if let Some(p) = &r.points_to {
                    let _ = write!(w, "  {p}");
                }
                let _ = writeln!(w);
            }
        }
        Output::Frame(f) => {
            let _ = writeln!(w, "frame {}: {}", f.level, place_line(&f.place));
            if let Some(func) = &f.place.function {
                let _ = writeln!(w, "function {func}, stack {} bytes", f.stack_size);
            } else {
                let _ = writeln!(w, "stack {} bytes", f.stack_size);
            }
            if let Some(stack) = &f.stack {
                // Rows of 8 bytes, labelled by offset from the frame pointer.
                let n = stack.len() / 2;
                for row in (0..n).step_by(8) {
                    let end = (row + 8).min(n);
                    let off = row as i64 - n as i64;
                    let _ = writeln!(w, "  fp{off:<5} {}", spaced(&stack[2 * row..2 * end]));
                }
            }
        }
        Output::Backtrace { frames } => {
            for f in frames {
                let func = f.place.function.as_deref().unwrap_or("?");
                let _ = writeln!(w, "#{} {func}: {}", f.level, place_line(&f.place));
            }
        }
        Output::Invocations {
            current,
            total,
            invocations,
        } => {
            let _ = writeln!(w, "{total} invocations (current {current})");
            for i in invocations {
                let mark = if i.current { "*" } else { " " };
                let _ = write!(
                    w,
                    "{mark}{:<6} {}  cpu {}  r0 {}",
                    i.index, i.program, i.cpu, i.retval
                );
                if let Some(n) = &i.retval_name {
                    let _ = write!(w, " ({n})");
                }
                if let Some(len) = i.packet_len {
                    let _ = write!(w, "  packet {len} bytes");
                }
                if i.partial {
                    let _ = write!(w, "  partial");
                }
                let _ = writeln!(w);
            }
        }
        Output::Maps { maps } => {
            if maps.is_empty() {
                let _ = writeln!(w, "no maps");
            }
            for m in maps {
                let _ = write!(
                    w,
                    "{}: {}  name {}  key {}B  value {}B  max_entries {}",
                    m.index, m.map_type, m.name, m.key_size, m.value_size, m.max_entries
                );
                if let Some(n) = m.entries_at_start {
                    let _ = write!(w, "  entries at start {n}");
                }
                let _ = writeln!(w);
            }
        }
        Output::Line(p) => {
            let _ = writeln!(w, "{}", place_line(p));
            if let Some(l) = source_line(p) {
                let _ = writeln!(w, "{l}");
            }
        }
        Output::Source(src) => {
            let _ = writeln!(w, "{}:", src.file);
            for l in &src.lines {
                let mark = match (l.current, l.breakpoint) {
                    (true, _) => "=>",
                    (false, true) => "b ",
                    _ => "  ",
                };
                let _ = writeln!(w, "{mark} {:>4}\t{}", l.line, l.text);
            }
        }
        Output::Disassembly { program, lines } => {
            let _ = writeln!(w, "{program}:");
            for l in lines {
                if let Some(f) = &l.function {
                    let _ = writeln!(w, "<{f}>:");
                }
                let mark = match (l.current, l.breakpoint) {
                    (true, _) => "=>",
                    (false, true) => "b ",
                    _ => "  ",
                };
                let _ = writeln!(w, "{mark} {:>5}:  {}", l.insn, l.text);
            }
        }
        Output::State(st) => {
            let _ = writeln!(
                w,
                "step {}, program {}, insn {}, {} frame(s)",
                st.step, st.program, st.insn, st.frames
            );
            for (i, r) in st.registers.iter().enumerate() {
                let _ = writeln!(w, "r{i} {r:#018x}");
            }
            for r in &st.regions {
                let _ = writeln!(
                    w,
                    "region {} {} ({} bytes): {}",
                    r.id,
                    r.kind,
                    r.bytes.len() / 2,
                    r.bytes
                );
            }
        }
        Output::Switched {
            invocation,
            place,
            notes,
        } => {
            let _ = writeln!(w, "invocation {invocation}");
            let _ = writeln!(w, "{}", place_line(place));
            for n in notes {
                let _ = writeln!(w, "note: {n}");
            }
        }
        Output::Help { commands } => {
            if let [one] = commands.as_slice() {
                let _ = writeln!(w, "{}", one.usage);
                let _ = writeln!(w, "  {}", one.summary);
                if !one.aliases.is_empty() {
                    let _ = writeln!(w, "  also: {}", one.aliases.join(", "));
                }
            } else {
                let width = commands.iter().map(|c| c.usage.len()).max().unwrap_or(0);
                for c in commands {
                    let _ = write!(w, "{:<width$}  {}", c.usage, c.summary);
                    if !c.aliases.is_empty() {
                        let _ = write!(w, " [{}]", c.aliases.join(", "));
                    }
                    let _ = writeln!(w);
                }
            }
        }
        Output::Error { message } => {
            let _ = writeln!(w, "error: {message}");
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place {
        Place {
            step: 17,
            program: 0,
            program_name: "xdp_firewall".into(),
            insn: 23,
            function: Some("xdp_firewall".into()),
            file: Some("/src/samples/xdp_fw.bpf.c".into()),
            line: Some(88),
            source: Some("    if (a > b)".into()),
            text: "if r1 > r2 goto +5".into(),
            ended: false,
        }
    }

    #[test]
    fn a_stop_prints_reason_place_and_source() {
        let o = Output::Stopped(Stopped {
            reason: Reason::Breakpoint { id: 1 },
            place: place(),
        });
        assert_eq!(
            render(&o),
            "breakpoint 1\nstep 17, insn 23 (xdp_fw.bpf.c:88): if r1 > r2 goto +5\n88\t    if (a > b)"
        );
    }

    #[test]
    fn dump_rows_are_labelled_by_offset() {
        assert_eq!(offset_label("pkt+14", 0, 16), "pkt+30");
        assert_eq!(offset_label("fp-16", 0, 8), "fp-8");
        assert_eq!(offset_label("fp-16", 0, 16), "fp");
        assert_eq!(offset_label("ctx", 0, 16), "ctx+16");
        assert_eq!(offset_label("0x10", 0x10, 16), "0x20");
        assert_eq!(offset_label("map_value(a-b)+4", 0, 16), "map_value(a-b)+20");
    }

    #[test]
    fn watch_values_print_as_integers() {
        let r = Reason::Watchpoint {
            id: 2,
            expr: "r3".into(),
            old: Some("0100000000000000".into()),
            new: Some("0500000000000000".into()),
        };
        assert_eq!(reason_line(&r).unwrap(), "watchpoint 2: r3: 0x1 -> 0x5");
    }
}
