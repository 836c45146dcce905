//! The environment answers what the program asks of the kernel: helper and
//! kfunc calls and map references in `ld_imm64`. The machine calls it with a
//! [`HelperCall`]: the arguments, the instruction, and checked access to the
//! machine's memory (every change it makes through the call is recorded for
//! undo).

use bpfrr_trace::isa::Imm64Kind;

use super::effects::{Effect, EffectList};
use super::fault::{Fault, FaultKind};
use super::memory::{Memory, Region, RegionId, RegionKind, address, ids, split_address};

/// Who was called.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Callee {
    /// A helper by `enum bpf_func_id` number.
    Helper(i32),
    /// A kfunc by BTF id and module (fd_array index, 0 = vmlinux).
    Kfunc { btf_id: i32, module: i16 },
}

/// What a helper call does to the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelperOutcome {
    /// r0 = value; execution continues after the call.
    Return(u64),
    /// Continue after the call with r0 unchanged (a tail call that did not
    /// happen: empty slot, index out of range, or the limit of 33 reached).
    KeepR0,
    /// `bpf_tail_call` succeeded: run program `prog` (an index into the
    /// machine's programs) in place of the current frame. The machine turns
    /// this into `KeepR0` once 33 tail calls have happened.
    TailCall(usize),
    /// End the whole program now with this r0 (what `bpf_throw` does; uBPF's
    /// `unwind` extension returning 0).
    Exit(u64),
    /// Call the BPF function at code address `target` (from `ld_imm64` of a
    /// function, passed as a helper argument) with r1-r5 = `args`. When it
    /// returns, the machine calls [`Env::resume`] with `state` and its r0;
    /// that call can ask for another callback or return.
    Callback {
        target: u64,
        args: [u64; 5],
        state: u64,
    },
}

/// The interface between the machine and whatever plays the kernel.
pub trait Env {
    /// A helper call `call id`. Unknown helpers should return
    /// `Err(call.fault(FaultKind::UnknownHelper { id }))`.
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault>;

    /// The callback a previous outcome asked for returned `callback_r0`.
    /// `call` carries the original call's arguments and instruction.
    fn resume(
        &mut self,
        callee: Callee,
        state: u64,
        callback_r0: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        let _ = (state, callback_r0);
        let id = match callee {
            Callee::Helper(id) => id,
            Callee::Kfunc { btf_id, .. } => btf_id,
        };
        Err(call.fault(FaultKind::Helper {
            id,
            message: "this environment does not run callbacks".into(),
        }))
    }

    /// A kfunc call.
    fn call_kfunc(
        &mut self,
        btf_id: i32,
        module: i16,
        call: &mut HelperCall<'_>,
    ) -> Result<HelperOutcome, Fault> {
        Err(call.fault(FaultKind::UnknownKfunc { btf_id, module }))
    }

    /// A load of `size` bytes at `addr`, an address inside no region of the
    /// machine, by the load instruction at `call.pc()`. In a recording of a
    /// tracing program that is a read of kernel memory through a BTF
    /// pointer, whose value the recorder kept: `Ok(Some(value))` gives the
    /// destination register that value. `Ok(None)` (the default): not one,
    /// the load faults as any wild read.
    fn btf_load(
        &mut self,
        addr: u64,
        size: usize,
        call: &mut HelperCall<'_>,
    ) -> Result<Option<u64>, Fault> {
        let _ = (addr, size, call);
        Ok(None)
    }

    /// The value of an `ld_imm64` that refers to a map (`MapFd`, `MapValue`,
    /// `MapIdx`, `MapIdxValue`) or a kernel variable (`BtfId`). Typically the
    /// address of a `RegionKind::Map` region or into a `GlobalData` region,
    /// created on first use with `call.alloc`.
    fn resolve_imm64(
        &mut self,
        kind: Imm64Kind,
        imm: u64,
        call: &mut HelperCall<'_>,
    ) -> Result<u64, Fault> {
        Err(call.fault(FaultKind::UnresolvedImm64 {
            kind: imm64_name(kind),
            imm,
        }))
    }
}

fn imm64_name(kind: Imm64Kind) -> &'static str {
    match kind {
        Imm64Kind::Imm => "constant",
        Imm64Kind::MapFd => "map fd",
        Imm64Kind::MapValue => "map value",
        Imm64Kind::BtfId => "BTF id",
        Imm64Kind::Func => "function",
        Imm64Kind::MapIdx => "map index",
        Imm64Kind::MapIdxValue => "map index value",
    }
}

/// One call from the program into the environment.
pub struct HelperCall<'a> {
    pub(crate) args: [u64; 5],
    pub(crate) prog: usize,
    pub(crate) pc: usize,
    pub(crate) tail_calls: u32,
    pub(crate) mem: &'a mut Memory,
    pub(crate) log: Option<&'a mut EffectList>,
}

impl<'a> HelperCall<'a> {
    /// A call outside a machine run (tests, setup): changes are not recorded.
    pub fn detached(mem: &'a mut Memory, args: [u64; 5]) -> HelperCall<'a> {
        HelperCall {
            args,
            prog: 0,
            pc: 0,
            tail_calls: 0,
            mem,
            log: None,
        }
    }

    /// r1-r5.
    pub fn args(&self) -> [u64; 5] {
        self.args
    }
    /// Argument `n` (1-5, as in r1-r5).
    pub fn arg(&self, n: usize) -> u64 {
        self.args[n.clamp(1, 5) - 1]
    }
    /// Slot index of the call instruction.
    pub fn pc(&self) -> usize {
        self.pc
    }
    /// Index of the running program.
    pub fn prog(&self) -> usize {
        self.prog
    }
    /// Tail calls made so far in this run.
    pub fn tail_calls(&self) -> u32 {
        self.tail_calls
    }
    /// The address of the context (what r1 held at program entry).
    pub fn context_address(&self) -> u64 {
        address(ids::CONTEXT, 0)
    }
    /// Read access to all of memory.
    pub fn memory(&self) -> &Memory {
        self.mem
    }
    /// A fault at this call's instruction.
    pub fn fault(&self, kind: FaultKind) -> Fault {
        Fault::new(kind, self.prog, self.pc)
    }
    /// A helper failure with a message.
    pub fn error(&self, id: i32, message: impl Into<String>) -> Fault {
        self.fault(FaultKind::Helper {
            id,
            message: message.into(),
        })
    }

    /// Reads `len` bytes at `addr`, checked.
    pub fn read(&self, addr: u64, len: usize) -> Result<&[u8], Fault> {
        self.mem.read(addr, len).map_err(|k| self.fault(k))
    }

    /// Reads a little-endian u64 at `addr`.
    pub fn read_u64(&self, addr: u64) -> Result<u64, Fault> {
        let b = self.read(addr, 8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }

    /// Reads a little-endian u32 at `addr`.
    pub fn read_u32(&self, addr: u64) -> Result<u32, Fault> {
        let b = self.read(addr, 4)?;
        Ok(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
    }

    /// Writes bytes at `addr`, checked and recorded.
    pub fn write(&mut self, addr: u64, bytes: &[u8]) -> Result<(), Fault> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self.mem.write(addr, bytes) {
            Ok((region, offset, old)) => {
                if let Some(log) = self.log.as_deref_mut() {
                    log.push(Effect::Write {
                        region,
                        offset,
                        old: old.into_boxed_slice(),
                    });
                }
                Ok(())
            }
            Err(k) => Err(self.fault(k)),
        }
    }

    /// Creates a region (map value, ring-buffer record, helper buffer, map
    /// object) and returns its id and the address of its first byte.
    pub fn alloc(&mut self, kind: RegionKind, bytes: Vec<u8>, writable: bool) -> (RegionId, u64) {
        let id = self.mem.alloc(kind, bytes, writable);
        if let Some(log) = self.log.as_deref_mut() {
            log.push(Effect::RegionCreated { id });
        }
        (id, address(id, 0))
    }

    /// Frees a dynamic region; later accesses fault as use-after-free.
    pub fn free(&mut self, id: RegionId) {
        if let Some(old) = self.mem.free(id)
            && let Some(log) = self.log.as_deref_mut()
        {
            log.push(Effect::RegionReplaced {
                id,
                old: Box::new(old),
            });
        }
    }

    /// Replaces a region's bytes (e.g. a map update through a stored value
    /// region, or growing the packet buffer).
    pub fn set_region_bytes(&mut self, id: RegionId, bytes: Vec<u8>) {
        if let Some(old) = self.mem.set_bytes(id, bytes)
            && let Some(log) = self.log.as_deref_mut()
        {
            log.push(Effect::RegionReplaced {
                id,
                old: Box::new(old),
            });
        }
    }

    /// Moves the packet pointers: offsets of data_meta, data and data_end in
    /// the packet buffer (see `Memory::packet_window`).
    pub fn set_packet_window(&mut self, meta: u32, data: u32, end: u32) -> Result<(), Fault> {
        let old_region: Option<Region> = self.mem.region(ids::PACKET).cloned();
        let old_data = self.mem.packet_data_offset();
        self.mem.set_packet_window(meta, data, end).map_err(|m| {
            Fault::new(FaultKind::Helper { id: -1, message: m }, self.prog, self.pc)
        })?;
        if let Some(log) = self.log.as_deref_mut()
            && let Some(old) = old_region
        {
            log.push(Effect::RegionReplaced {
                id: ids::PACKET,
                old: Box::new(old),
            });
            log.push(Effect::PacketData { old_data });
        }
        Ok(())
    }

    /// The region and offset an address points to, if it is inside a live region.
    pub fn region_of(&self, addr: u64) -> Option<(RegionId, &Region, i64)> {
        let (id, off) = split_address(addr);
        let r = self.mem.region(id)?;
        r.live().then_some((id, r, off))
    }
}

/// An environment with no helpers at all: every call is an `UnknownHelper` fault.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHelpers;

impl Env for NoHelpers {
    fn call_helper(&mut self, id: i32, call: &mut HelperCall<'_>) -> Result<HelperOutcome, Fault> {
        Err(call.fault(FaultKind::UnknownHelper { id }))
    }
}
