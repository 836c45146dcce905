//! Sessions over recorded invocations: the replay setup (`Replayer`) gives
//! the started machine and its `RecordedEnv`; the trace gives names and
//! types ([`debug_info`]) and the recorded end (the fidelity check).

use std::sync::Arc;

use bpfrr_trace::btf::{Btf, BtfKind};
use bpfrr_trace::catalog::ProgType;
use bpfrr_trace::trace::Trace;

use super::core::{ExpectedExit, Session, SessionError};
use super::info::{DebugInfo, FunctionSym, MapInfo};
use super::memo::SessionEnv;
use crate::env::recorded::RecordedEnv;
use crate::replay::{InvocationRun, Replayer};
use crate::vm::Machine;

impl SessionEnv for RecordedEnv<'_> {
    fn divergence(&self) -> Option<String> {
        RecordedEnv::divergence(self).map(|d| d.message.clone())
    }

    fn kfunc_name(&self, btf_id: i32) -> Option<&str> {
        self.model().kfunc_name(btf_id)
    }
}

/// Names and types of a trace for sessions over invocations of program
/// `entry` (machine program index = trace program id).
pub fn debug_info(trace: &Trace, entry: u32) -> DebugInfo {
    let programs = trace.programs();
    let btf = programs
        .get(entry as usize)
        .and_then(|p| p.btf.as_deref())
        .or_else(|| programs.iter().find_map(|p| p.btf.as_deref()))
        .and_then(|b| Btf::parse(b).ok());
    let context_type = programs.get(entry as usize).and_then(|p| {
        let name = match ProgType::from_number(p.prog_type)? {
            ProgType::Xdp => "xdp_md",
            ProgType::SchedCls
            | ProgType::SchedAct
            | ProgType::SocketFilter
            | ProgType::CgroupSkb => "__sk_buff",
            _ => return None,
        };
        btf.as_ref()?.find_by_name(BtfKind::Struct, name)
    });
    let functions = programs
        .iter()
        .map(|p| {
            let mut f: Vec<FunctionSym> = p
                .func_info
                .iter()
                .map(|f| FunctionSym {
                    name: f.name.clone(),
                    start: f.insn as usize,
                })
                .collect();
            if f.is_empty() {
                f.push(FunctionSym {
                    name: p.name.clone(),
                    start: 0,
                });
            }
            f.sort_by_key(|f| f.start);
            f
        })
        .collect();
    let maps = trace
        .maps()
        .iter()
        .map(|m| MapInfo {
            name: m.name.clone(),
            key_type: (m.btf_key_type_id != 0).then_some(m.btf_key_type_id),
            value_type: (m.btf_value_type_id != 0).then_some(m.btf_value_type_id),
        })
        .collect();
    DebugInfo {
        btf: btf.map(Arc::new),
        functions,
        maps,
        context_type,
    }
}

impl<'t> Session<RecordedEnv<'t>> {
    /// A session over invocation `index` of the replayer's trace, checking
    /// its end against the recording (return value, final packet).
    pub fn for_invocation(replayer: &mut Replayer<'t>, index: u64) -> Result<Self, SessionError> {
        let trace = replayer.trace();
        let inv = trace
            .invocation_owned(index)
            .map_err(|e| SessionError::invalid(e.to_string()))?;
        let run = replayer
            .start(index)
            .map_err(|e| SessionError::invalid(e.to_string()))?;
        let info = debug_info(trace, inv.program);
        let mut s = Session::new(run.machine, run.env, info)?;
        if !inv.partial {
            s.expect_exit(ExpectedExit {
                r0: inv.retval,
                packet: inv.final_packet.clone(),
                packet_is_prefix: inv.packet_truncated_from.is_some(),
            });
        }
        Ok(s)
    }

    /// Runs to the end and hands the invocation back to the replayer, so
    /// what it wrote to maps carries over to the next invocation.
    pub fn finish_into(self, replayer: &mut Replayer<'t>, index: u64) {
        let (machine, env) = self.into_parts();
        replayer.finish(InvocationRun {
            index,
            machine,
            env,
        });
    }
}

impl<E: SessionEnv> Session<E> {
    /// Runs to the end and gives back the machine (at the end) and the environment.
    pub fn into_parts(mut self) -> (Machine, E) {
        self.run_to_end();
        (self.machine, self.env.real)
    }
}
