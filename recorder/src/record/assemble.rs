//! Assembling decoded records into invocations.
//!
//! Records of one CPU arrive in the order that CPU wrote them; records of
//! different CPUs interleave. An invocation is the Entry record of a CPU
//! sequence number, the Helper/TailCall records after it, the Entry records
//! of tail-called programs (same sequence number, tail flag), and the Exit
//! record; BtfLoad records go, in order, into the invocation's
//! `btf_loads`. Sequence numbers are given in completion order.
//!
//! Lost records are never silent: each record carries the CPU's lost
//! counter; when it moves inside an invocation, that invocation is marked
//! partial. Records whose Entry was lost cannot be placed and are counted
//! in [`Assembler::orphans`].

use std::collections::HashMap;

use bpfrr_trace::trace::{BtfLoad, EventKind, HelperEvent, HelperOutput, Invocation};

use crate::wire::{CallKind, FLAG_TAIL_ENTRY, Header, OUT_ARG_RETURNED, Record};

/// `HelperEvent::id` of a tail call whose slot was empty.
pub const NO_TAIL_CALL_TARGET: u32 = u32::MAX;

#[derive(Debug)]
struct Open {
    inv: Invocation,
    lost_at_start: u64,
}

impl Open {
    /// Marks the invocation partial when its CPU lost records since its
    /// entry (the record's lost counter moved).
    fn note_lost(&mut self, header: &Header) {
        if header.lost != self.lost_at_start {
            self.inv.partial = true;
        }
    }
}

/// Turns a stream of records into invocations.
#[derive(Debug, Default)]
pub struct Assembler {
    open: HashMap<u32, Open>,
    next_seq: u64,
    /// Records that belonged to no open invocation (their Entry was lost).
    pub orphans: u64,
    /// Invocations emitted without their Exit (lost, or recording stopped).
    pub incomplete: u64,
}

impl Assembler {
    pub fn new() -> Assembler {
        Assembler::default()
    }

    fn close(&mut self, mut open: Open, complete: bool) -> Invocation {
        if !complete {
            open.inv.partial = true;
            self.incomplete += 1;
        }
        open.inv.seq = self.next_seq;
        self.next_seq += 1;
        open.inv
    }

    /// Feeds one record; returns the invocations it completed.
    pub fn push(&mut self, record: Record) -> Vec<Invocation> {
        let mut done = Vec::new();
        let h = *record.header();
        // An open invocation of another sequence number on this CPU will
        // never see its exit (lost): close it.
        if let Some(o) = self.open.get(&h.cpu)
            && o.inv.cpu_seq != h.cpu_seq
        {
            let o = self.open.remove(&h.cpu).expect("present");
            done.push(self.close(o, false));
        }
        match record {
            Record::Entry {
                header,
                time_ns,
                ctx,
                packet,
                meta,
            } => {
                let tail = header.flags & FLAG_TAIL_ENTRY != 0;
                if tail && let Some(o) = self.open.get_mut(&header.cpu) {
                    // The program a tail call went to.
                    if let Some(ev) = o
                        .inv
                        .events
                        .iter_mut()
                        .rev()
                        .find(|e| e.kind == EventKind::TailCall)
                        && ev.id == NO_TAIL_CALL_TARGET
                    {
                        ev.id = header.prog;
                    }
                    o.note_lost(&header);
                    return done;
                }
                let packet_truncated_from = packet
                    .as_ref()
                    .filter(|p| p.truncated())
                    .map(|p| p.len.min(u32::MAX as u64) as u32);
                let inv = Invocation {
                    seq: 0,
                    cpu: header.cpu,
                    cpu_seq: header.cpu_seq,
                    time_ns,
                    program: header.prog,
                    ctx,
                    packet: packet.map(|p| p.bytes),
                    packet_meta: meta.map(|m| m.bytes),
                    packet_truncated_from,
                    // Its first records were lost when it starts as a tail entry.
                    partial: tail,
                    ..Invocation::default()
                };
                self.open.insert(
                    header.cpu,
                    Open {
                        inv,
                        lost_at_start: header.lost,
                    },
                );
            }
            Record::Helper {
                header,
                id,
                kind,
                r0,
                outputs,
            } => {
                let Some(o) = self.open_for(&header) else {
                    return done;
                };
                let outputs = outputs
                    .into_iter()
                    // A failed lookup returned NULL: no memory to replay.
                    .filter(|out| !(out.arg == OUT_ARG_RETURNED && r0 == 0))
                    .map(|out| HelperOutput {
                        arg: out.arg,
                        bytes: out.data.bytes,
                    })
                    .collect();
                o.inv.events.push(HelperEvent {
                    insn: header.insn,
                    kind: match kind {
                        CallKind::Helper => EventKind::Helper,
                        CallKind::Kfunc => EventKind::Kfunc,
                    },
                    id,
                    ret: r0,
                    outputs,
                });
            }
            Record::TailCall { header, .. } => {
                let Some(o) = self.open_for(&header) else {
                    return done;
                };
                o.inv.events.push(HelperEvent {
                    insn: header.insn,
                    kind: EventKind::TailCall,
                    id: NO_TAIL_CALL_TARGET,
                    ret: 0,
                    outputs: Vec::new(),
                });
            }
            Record::BtfLoad { header, value } => {
                let Some(o) = self.open_for(&header) else {
                    return done;
                };
                o.inv.btf_loads.push(BtfLoad {
                    insn: header.insn,
                    value,
                });
            }
            Record::Exit {
                header,
                r0,
                packet,
                packet_unchanged,
            } => {
                let Some(mut o) = self.open.remove(&header.cpu) else {
                    self.orphans += 1;
                    return done;
                };
                o.note_lost(&header);
                o.inv.retval = r0;
                o.inv.final_packet = if packet_unchanged {
                    // No program of the recording can change the packet.
                    o.inv.packet.clone()
                } else {
                    packet.map(|p| p.bytes)
                };
                done.push(self.close(o, true));
            }
        }
        done
    }

    /// The invocation open on the record's CPU, marked partial if records
    /// were lost since its entry; None (the record counts as an orphan)
    /// when its entry was lost.
    fn open_for(&mut self, header: &Header) -> Option<&mut Open> {
        let Some(o) = self.open.get_mut(&header.cpu) else {
            self.orphans += 1;
            return None;
        };
        o.note_lost(header);
        Some(o)
    }

    /// Closes every invocation still open (the recording stopped inside
    /// them, or their exit was lost); they are marked partial.
    pub fn finish(&mut self) -> Vec<Invocation> {
        let mut cpus: Vec<u32> = self.open.keys().copied().collect();
        cpus.sort();
        cpus.into_iter()
            .map(|c| {
                let o = self.open.remove(&c).expect("present");
                self.close(o, false)
            })
            .collect()
    }
}

/// Puts the records of one drain in the order their invocations started,
/// across CPUs: each CPU's blobs (an Entry that is not a tail entry and
/// the records after it) keep their order, and the CPUs' streams are merged
/// by the blobs' entry times. The probes send a CPU's invocations in
/// batches, so the ring buffer's order across CPUs is the order of the
/// batches; the recorder flushes every CPU before each drain, so one drain
/// holds every invocation that ended before it, and this order is the one
/// a stop condition (`--until-retval`, `--count`) cuts the trace in.
pub fn in_time_order(records: Vec<Record>) -> Vec<Record> {
    use std::collections::{BTreeMap, VecDeque};
    let mut streams: BTreeMap<u32, VecDeque<(u64, Vec<Record>)>> = BTreeMap::new();
    for r in records {
        let h = *r.header();
        let stream = streams.entry(h.cpu).or_default();
        match &r {
            Record::Entry { time_ns, .. } if h.flags & FLAG_TAIL_ENTRY == 0 => {
                stream.push_back((*time_ns, vec![r]));
            }
            _ => match stream.back_mut() {
                Some((_, blob)) => blob.push(r),
                None => stream.push_back((0, vec![r])),
            },
        }
    }
    let mut out = Vec::new();
    loop {
        let next = streams
            .iter()
            .filter_map(|(cpu, s)| s.front().map(|(t, _)| (*t, *cpu)))
            .min();
        let Some((_, cpu)) = next else {
            return out;
        };
        let (_, blob) = streams
            .get_mut(&cpu)
            .and_then(VecDeque::pop_front)
            .expect("the stream has a front blob");
        out.extend(blob);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Captured, Header, Output};

    #[test]
    fn a_drain_is_put_in_entry_time_order_across_cpus_and_kept_per_cpu() {
        let at = |cpu: u32, seq: u64, t: u64| {
            let Record::Entry {
                header,
                ctx,
                packet,
                meta,
                ..
            } = entry(h(cpu, seq, 0, 0))
            else {
                unreachable!()
            };
            Record::Entry {
                header,
                time_ns: t,
                ctx,
                packet,
                meta,
            }
        };
        // CPU 1's batch arrived first, but CPU 0's first invocation started
        // before it; CPU 0's own order is kept even against its times.
        let records = vec![
            at(1, 1, 20),
            exit(h(1, 1, 0, 9), 1),
            at(1, 2, 40),
            exit(h(1, 2, 0, 9), 0),
            at(0, 1, 10),
            lookup(h(0, 1, 0, 3), 0),
            exit(h(0, 1, 0, 9), 0),
            at(0, 3, 50),
            exit(h(0, 3, 0, 9), 0),
            at(0, 2, 30),
            exit(h(0, 2, 0, 9), 0),
        ];
        let order: Vec<(u32, u64)> = in_time_order(records.clone())
            .iter()
            .map(|r| (r.header().cpu, r.header().cpu_seq))
            .collect();
        assert_eq!(
            order,
            vec![
                (0, 1),
                (0, 1),
                (0, 1),
                (1, 1),
                (1, 1),
                (1, 2),
                (1, 2),
                (0, 3),
                (0, 3),
                (0, 2),
                (0, 2)
            ]
        );
        assert_eq!(in_time_order(Vec::new()), Vec::new());
    }

    fn h(cpu: u32, seq: u64, prog: u32, insn: u32) -> Header {
        Header {
            flags: 0,
            insn,
            cpu,
            prog,
            cpu_seq: seq,
            lost: 0,
        }
    }

    fn entry(header: Header) -> Record {
        Record::Entry {
            header,
            time_ns: 5,
            ctx: vec![1; 24],
            packet: Some(Captured {
                bytes: vec![0xab; 60],
                len: 60,
            }),
            meta: None,
        }
    }

    fn exit(header: Header, r0: u64) -> Record {
        Record::Exit {
            header,
            r0,
            packet: Some(Captured {
                bytes: vec![0xcd; 60],
                len: 60,
            }),
            packet_unchanged: false,
        }
    }

    fn lookup(header: Header, r0: u64) -> Record {
        Record::Helper {
            header,
            id: 1,
            kind: CallKind::Helper,
            r0,
            outputs: vec![Output {
                arg: OUT_ARG_RETURNED,
                data: Captured {
                    bytes: vec![9; 8],
                    len: 8,
                },
            }],
        }
    }

    #[test]
    fn interleaved_cpus_assemble_separately() {
        let mut a = Assembler::new();
        let mut out = Vec::new();
        out.extend(a.push(entry(h(0, 1, 0, 0))));
        out.extend(a.push(entry(h(1, 1, 0, 0))));
        out.extend(a.push(lookup(h(1, 1, 0, 6), 0xffff_0000)));
        out.extend(a.push(lookup(h(0, 1, 0, 6), 0)));
        out.extend(a.push(exit(h(1, 1, 0, 20), 2)));
        out.extend(a.push(exit(h(0, 1, 0, 20), 1)));
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].cpu, out[0].retval, out[0].seq), (1, 2, 0));
        assert_eq!((out[1].cpu, out[1].retval, out[1].seq), (0, 1, 1));
        assert_eq!(
            out[0].events[0].outputs.len(),
            1,
            "non-null lookup keeps value"
        );
        assert!(out[1].events[0].outputs.is_empty(), "null lookup has none");
        assert!(out.iter().all(|i| !i.partial));
        assert_eq!(out[0].packet.as_deref(), Some(&[0xab; 60][..]));
        assert_eq!(out[0].final_packet.as_deref(), Some(&[0xcd; 60][..]));
    }

    #[test]
    fn tail_calls_join_the_invocation_and_name_their_target() {
        let mut a = Assembler::new();
        assert!(a.push(entry(h(0, 7, 0, 0))).is_empty());
        a.push(Record::TailCall {
            header: h(0, 7, 0, 30),
            index: 0,
            map: Some(2),
        });
        let mut t = h(0, 7, 1, 0);
        t.flags = FLAG_TAIL_ENTRY;
        assert!(a.push(entry(t)).is_empty());
        let out = a.push(exit(h(0, 7, 1, 12), 7));
        assert_eq!(out.len(), 1);
        let inv = &out[0];
        assert_eq!(inv.program, 0);
        assert_eq!(inv.events.len(), 1);
        assert_eq!(inv.events[0].kind, EventKind::TailCall);
        assert_eq!(inv.events[0].id, 1);
        assert_eq!(inv.retval, 7);
    }

    #[test]
    fn a_failed_tail_call_keeps_no_target() {
        let mut a = Assembler::new();
        a.push(entry(h(0, 1, 0, 0)));
        a.push(Record::TailCall {
            header: h(0, 1, 0, 30),
            index: 5,
            map: None,
        });
        let out = a.push(exit(h(0, 1, 0, 33), 0));
        assert_eq!(out[0].events[0].id, NO_TAIL_CALL_TARGET);
    }

    #[test]
    fn lost_records_make_invocations_partial_and_orphans_counted() {
        let mut a = Assembler::new();
        a.push(entry(h(0, 1, 0, 0)));
        let mut lost = h(0, 1, 0, 6);
        lost.lost = 1;
        a.push(lookup(lost, 1));
        let out = a.push(exit(h(0, 1, 0, 9), 1));
        assert!(out[0].partial);
        // Entry of seq 2 lost: its helper and exit are orphans.
        a.push(lookup(h(0, 2, 0, 6), 1));
        a.push(exit(h(0, 2, 0, 9), 1));
        assert_eq!(a.orphans, 2);
        // Exit of seq 3 lost: closed when seq 4 starts.
        a.push(entry(h(0, 3, 0, 0)));
        let out = a.push(entry(h(0, 4, 0, 0)));
        assert_eq!(out.len(), 1);
        assert!(out[0].partial);
        assert_eq!(out[0].cpu_seq, 3);
        let rest = a.finish();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].cpu_seq, 4);
        assert!(rest[0].partial);
        assert_eq!(a.incomplete, 2);
    }

    #[test]
    fn btf_loads_and_kfunc_results_join_their_invocation_in_order() {
        let mut a = Assembler::new();
        a.push(entry(h(0, 1, 0, 0)));
        a.push(entry(h(1, 1, 0, 0)));
        a.push(Record::BtfLoad {
            header: h(0, 1, 0, 4),
            value: 42,
        });
        a.push(Record::BtfLoad {
            header: h(1, 1, 0, 4),
            value: 7,
        });
        a.push(Record::Helper {
            header: h(0, 1, 0, 6),
            id: 12345,
            kind: CallKind::Kfunc,
            r0: 0xffff_8880_0000_1000,
            outputs: Vec::new(),
        });
        a.push(Record::BtfLoad {
            header: h(0, 1, 0, 9),
            value: 0x6873_6162,
        });
        let out = a.push(exit(h(0, 1, 0, 12), 0));
        let inv = &out[0];
        let loads: Vec<(u32, u64)> = inv.btf_loads.iter().map(|l| (l.insn, l.value)).collect();
        assert_eq!(loads, vec![(4, 42), (9, 0x6873_6162)]);
        assert_eq!(inv.events.len(), 1);
        assert_eq!(inv.events[0].kind, EventKind::Kfunc);
        assert_eq!(inv.events[0].id, 12345);
        // A load of an invocation whose entry was lost is an orphan.
        a.push(Record::BtfLoad {
            header: h(2, 1, 0, 4),
            value: 1,
        });
        assert_eq!(a.orphans, 1);
    }

    #[test]
    fn an_unchanged_final_packet_is_the_entry_packet() {
        let mut a = Assembler::new();
        a.push(entry(h(0, 1, 0, 0)));
        let out = a.push(Record::Exit {
            header: h(0, 1, 0, 9),
            r0: 2,
            packet: None,
            packet_unchanged: true,
        });
        assert_eq!(out[0].final_packet.as_deref(), Some(&[0xab; 60][..]));
        assert_eq!(out[0].final_packet, out[0].packet);
        assert!(!out[0].partial);
    }

    #[test]
    fn truncated_packets_keep_their_real_length() {
        let mut a = Assembler::new();
        a.push(Record::Entry {
            header: h(0, 1, 0, 0),
            time_ns: 0,
            ctx: vec![],
            packet: Some(Captured {
                bytes: vec![1; 16],
                len: 1500,
            }),
            meta: None,
        });
        let out = a.push(exit(h(0, 1, 0, 3), 2));
        assert_eq!(out[0].packet_truncated_from, Some(1500));
        assert_eq!(out[0].packet.as_ref().unwrap().len(), 16);
    }
}
