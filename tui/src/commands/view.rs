//! Reading a session into output values: places, registers, frames,
//! breakpoints, state. Shared by the executor and by `bpfrr log`/`diff`.

use bpfrr_replayer::expr::Location;
use bpfrr_replayer::session::{BreakLocation, Breakpoint, Session, SessionEnv, Watchpoint};
use bpfrr_replayer::vm::{SourceLine, split_address};
use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::isa::{CallTarget, Insn};

use super::output::{
    BreakpointInfo, FrameOut, Place, RegionOut, RegisterOut, StateOut, WatchpointInfo, hex,
};

/// The instruction's text, with the function a bpf-to-bpf call goes to
/// (`call 0x69 <parse_packet>`).
pub fn insn_text<E: SessionEnv>(s: &Session<E>, prog: usize, pc: usize) -> String {
    label_call(s, prog, pc, s.insn_text(prog, pc))
}

fn label_call<E: SessionEnv>(s: &Session<E>, prog: usize, pc: usize, text: String) -> String {
    let insn = s.machine().program(prog).and_then(|p| p.insn(pc));
    if let Some(Insn::Call(CallTarget::Local(rel))) = insn
        && let Ok(target) = usize::try_from(pc as i64 + 1 + *rel as i64)
        && let Some(f) = s
            .info()
            .function_at(prog, target)
            .filter(|f| f.start == target)
    {
        return format!("{text} <{}>", f.name);
    }
    text
}

/// A place from its parts (a log record, an origin link, a diff).
pub fn place_at<E: SessionEnv>(
    s: &Session<E>,
    step: u64,
    prog: usize,
    pc: usize,
    line: Option<&SourceLine>,
    text: String,
) -> Place {
    Place {
        step,
        program: prog,
        program_name: s
            .machine()
            .program(prog)
            .map_or_else(String::new, |p| p.name().to_string()),
        insn: pc,
        function: s.info().function_at(prog, pc).map(|f| f.name.clone()),
        file: line.map(|l| l.file.clone()),
        line: line.map(|l| l.line),
        source: line
            .map(|l| l.text.trim_end().to_string())
            .filter(|t| !t.is_empty()),
        text: label_call(s, prog, pc, text),
        ended: false,
    }
}

/// Where the session is now.
pub fn current_place<E: SessionEnv>(s: &Session<E>) -> Place {
    let (prog, pc) = (s.prog(), s.pc());
    let mut p = place_at(s, s.position(), prog, pc, s.line(), s.insn_text(prog, pc));
    p.ended = s.at_end()
        && matches!(
            s.end().map(|e| &e.kind),
            Some(bpfrr_replayer::session::EndKind::Exited(_))
        );
    p
}

/// The conventional name of a program's return value (`XDP_PASS`), when the type gives one.
pub fn retval_name(prog_type: Option<ProgType>, r0: u64) -> Option<String> {
    let name = match prog_type? {
        ProgType::Xdp => match r0 {
            0 => "XDP_ABORTED",
            1 => "XDP_DROP",
            2 => "XDP_PASS",
            3 => "XDP_TX",
            4 => "XDP_REDIRECT",
            _ => return None,
        },
        ProgType::SchedCls | ProgType::SchedAct => match r0 as i64 as i32 {
            -1 => "TC_ACT_UNSPEC",
            0 => "TC_ACT_OK",
            1 => "TC_ACT_RECLASSIFY",
            2 => "TC_ACT_SHOT",
            3 => "TC_ACT_PIPE",
            4 => "TC_ACT_STOLEN",
            5 => "TC_ACT_QUEUED",
            6 => "TC_ACT_REPEAT",
            7 => "TC_ACT_REDIRECT",
            _ => return None,
        },
        ProgType::CgroupSkb => match r0 {
            0 => "deny",
            1 => "allow",
            _ => return None,
        },
        ProgType::SocketFilter => {
            return Some(if r0 == 0 {
                "drop".into()
            } else {
                format!("keep {r0} bytes")
            });
        }
        _ => return None,
    };
    Some(name.to_string())
}

/// What a pointer value points to (`pkt+14`), or None for a number.
pub fn points_to<E: SessionEnv>(s: &Session<E>, value: u64) -> Option<String> {
    s.describe_value(value).text().map(str::to_string)
}

/// `r3`, `w3`, `4 bytes at fp-8`.
pub fn describe_location<E: SessionEnv>(s: &Session<E>, loc: &Location) -> String {
    match *loc {
        Location::Reg { reg, width } if width < 8 => format!("w{reg}"),
        Location::Reg { reg, .. } => format!("r{reg}"),
        Location::Mem { addr, len } => {
            let at = points_to(s, addr).unwrap_or_else(|| format!("{addr:#x}"));
            if len == 1 {
                format!("1 byte at {at}")
            } else {
                format!("{len} bytes at {at}")
            }
        }
    }
}

pub fn registers<E: SessionEnv>(s: &Session<E>) -> Vec<RegisterOut> {
    s.regs()
        .iter()
        .take(11)
        .enumerate()
        .map(|(i, &v)| RegisterOut {
            name: format!("r{i}"),
            value: v,
            points_to: points_to(s, v),
        })
        .collect()
}

/// The text of a breakpoint's location.
pub fn location_text(loc: &BreakLocation) -> String {
    match loc {
        BreakLocation::Insn { pc, .. } => format!("insn {pc}"),
        BreakLocation::Line { file, line } => format!("{file}:{line}"),
        BreakLocation::Function(f) => f.clone(),
        BreakLocation::Helper { name, .. } => format!("helper {name}"),
    }
}

/// The spec that sets the same breakpoint again (in another invocation).
pub fn location_spec(loc: &BreakLocation) -> String {
    match loc {
        BreakLocation::Insn { pc, .. } => format!("{pc}"),
        BreakLocation::Line { file, line } => format!("{file}:{line}"),
        BreakLocation::Function(f) => f.clone(),
        BreakLocation::Helper { name, .. } => name.clone(),
    }
}

pub fn breakpoint_info(b: &Breakpoint) -> BreakpointInfo {
    BreakpointInfo {
        id: b.id,
        location: location_text(&b.location),
        sites: b.sites.clone(),
        condition: b.condition.clone(),
        ignore: b.ignore,
        hits: b.hits,
        enabled: b.enabled,
    }
}

pub fn watchpoint_info<E: SessionEnv>(s: &Session<E>, w: &Watchpoint) -> WatchpointInfo {
    let value = match w.location {
        Location::Reg { reg, width } => s
            .regs()
            .get(reg as usize)
            .map(|v| hex(&v.to_le_bytes()[..(width as usize).min(8)])),
        Location::Mem { addr, len } => s.machine().memory().read(addr, len as usize).ok().map(hex),
    };
    WatchpointInfo {
        id: w.id,
        expr: w.expr.clone(),
        watching: describe_location(s, &w.location),
        value,
        hits: w.hits,
        enabled: w.enabled,
    }
}

/// The stack bytes of frame `depth` (lowest address first), found through
/// the region its frame pointer points into.
fn stack_bytes<E: SessionEnv>(s: &Session<E>, depth: usize) -> Option<Vec<u8>> {
    let frame = s.frames().get(depth)?;
    let kind = bpfrr_replayer::vm::Machine::stack_region_kind(depth);
    let mem = s.machine().memory();
    let (_, region) = mem.live_regions().find(|(_, r)| *r.kind() == kind)?;
    let bytes = region.bytes();
    let top = if depth + 1 == s.frames().len() {
        let (id, off) = split_address(s.regs()[10]);
        match mem.region(id) {
            Some(r) if *r.kind() == kind => off.clamp(0, bytes.len() as i64) as usize,
            _ => bytes.len(),
        }
    } else {
        (frame.stack_size as usize).min(bytes.len())
    };
    let size = (frame.stack_size as usize).min(top);
    Some(bytes[top - size..top].to_vec())
}

/// The call frames, innermost first.
pub fn frames<E: SessionEnv>(s: &Session<E>, with_stack: bool) -> Vec<FrameOut> {
    let fs = s.frames();
    let n = fs.len();
    (0..n)
        .rev()
        .map(|d| {
            let prog = fs[d].prog;
            let pc = if d + 1 == n {
                s.pc()
            } else {
                fs[d + 1].return_pc.saturating_sub(1)
            };
            let line = s.machine().program(prog).and_then(|p| p.line_of(pc));
            let mut place = place_at(s, s.position(), prog, pc, line, s.insn_text(prog, pc));
            if d + 1 == n {
                place = current_place(s);
            }
            FrameOut {
                level: n - 1 - d,
                place,
                stack_size: fs[d].stack_size,
                stack: if with_stack {
                    stack_bytes(s, d).map(|b| hex(&b))
                } else {
                    None
                },
            }
        })
        .collect()
}

/// Every register and every live memory byte.
pub fn state<E: SessionEnv>(s: &Session<E>) -> StateOut {
    StateOut {
        step: s.position(),
        program: s.prog(),
        insn: s.pc(),
        registers: s.regs().iter().take(11).copied().collect(),
        frames: s.frames().len(),
        regions: s
            .machine()
            .memory()
            .live_regions()
            .map(|(id, r)| RegionOut {
                id,
                kind: r.kind().to_string(),
                bytes: hex(r.bytes()),
            })
            .collect(),
    }
}

/// `bpf_map_lookup_elem`, `bpf_dynptr_slice` (kfuncs by name when the
/// session knows it), `helper 999`, `kfunc 12345`.
pub fn callee_name<E: SessionEnv>(env: &E, c: &bpfrr_replayer::vm::CallRecord) -> String {
    match c.callee {
        bpfrr_replayer::vm::Callee::Helper(id) => bpfrr_trace::catalog::helper_name(id)
            .map_or_else(|| format!("helper {id}"), str::to_string),
        bpfrr_replayer::vm::Callee::Kfunc { btf_id, .. } => env
            .kfunc_name(btf_id)
            .map_or_else(|| format!("kfunc {btf_id}"), str::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfrr_replayer::env::{ModelConfig, ModelEnv};
    use bpfrr_replayer::vm::{CallRecord, Callee, HelperOutcome};

    fn call(callee: Callee) -> CallRecord {
        CallRecord {
            callee,
            args: [0; 5],
            callback_r0: None,
            outcome: HelperOutcome::Return(0),
        }
    }

    #[test]
    fn calls_are_named_by_the_catalogue_and_by_the_sessions_kfunc_names() {
        let mut env = ModelEnv::new(Vec::new(), ModelConfig::default());
        env.set_kfunc_names([(64000, "bpf_dynptr_slice".to_string())]);
        let kfunc = |btf_id| call(Callee::Kfunc { btf_id, module: 0 });
        assert_eq!(
            callee_name(&env, &call(Callee::Helper(1))),
            "bpf_map_lookup_elem"
        );
        assert_eq!(
            callee_name(&env, &call(Callee::Helper(9999))),
            "helper 9999"
        );
        assert_eq!(callee_name(&env, &kfunc(64000)), "bpf_dynptr_slice");
        assert_eq!(callee_name(&env, &kfunc(64001)), "kfunc 64001");
    }
}
