//! Packet dynptrs: the kfuncs `bpf_dynptr_from_xdp` / `bpf_dynptr_from_skb`
//! that make them, `bpf_dynptr_slice` / `bpf_dynptr_slice_rdwr` that read
//! headers through them, the generic dynptr kfuncs (`bpf_dynptr_size`,
//! `_is_null`, `_is_rdonly`, `_adjust`, `_clone`) and the helpers
//! `bpf_dynptr_read` / `_write` / `_data` on them, carried out on the VM's
//! memory as the kernel does (`kernel/bpf/helpers.c`, `net/core/filter.c`).
//!
//! A dynptr is 16 bytes of the program's stack (`struct bpf_dynptr`) that
//! the program never reads itself (the verifier forbids it), so the VM
//! keeps the kernel's own layout (`struct bpf_dynptr_kern`) with VM values:
//! `data` is the VM address of the context (the kernel's points at the
//! `xdp_buff` / `sk_buff`), then `size` (low 24 bits) with the type (bits
//! 28-30) and the read-only bit (31), then `offset`. The kfuncs write it
//! through [`HelperCall::write`], so a session's undo restores it. As in
//! the kernel, offsets are relative to the packet's data pointer at the
//! time of each access, and the VM's packet is linear: a slice inside the
//! packet is a pointer into it (its VM address), never a copy.
//!
//! A dynptr whose bytes do not say "packet dynptr made in this VM"
//! ([`Decoded::Other`]: a local or ring-buffer dynptr, whose bytes come
//! from a recording) is not carried out here: calls on it are faults in
//! the model and replay from the recording in the recorded env.
//!
//! Kfuncs and helpers are known by name: BTF ids differ from one kernel to
//! the next.

pub use crate::maps::errno::{E2BIG, EFAULT, EINVAL, ERANGE};
use crate::vm::{ContextLayout, Fault, HelperCall, SkbProgram, address, ids};

/// Size of `struct bpf_dynptr`.
pub const DYNPTR_SIZE: usize = 16;
/// `DYNPTR_SIZE_MASK`: the size lives in the low 24 bits.
const SIZE_MASK: u32 = 0x00ff_ffff;
/// `DYNPTR_TYPE_SHIFT`.
const TYPE_SHIFT: u32 = 28;
/// `DYNPTR_RDONLY_BIT`.
const RDONLY_BIT: u32 = 1 << 31;
/// `BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH`: the flags
/// `bpf_dynptr_write` passes on to `bpf_skb_store_bytes`.
const SKB_STORE_FLAGS: u64 = 1 | 2;

/// `enum bpf_dynptr_type` values of the packet dynptrs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    /// `BPF_DYNPTR_TYPE_SKB`
    Skb = 3,
    /// `BPF_DYNPTR_TYPE_XDP`
    Xdp = 4,
}

/// The dynptr kfuncs carried out here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynptrKfunc {
    FromXdp,
    FromSkb,
    Slice,
    SliceRdwr,
    Size,
    IsNull,
    IsRdonly,
    Adjust,
    Clone,
}

/// What a kfunc returns, for comparing a replayed r0 with a recorded one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returns {
    /// A helper's `long` (all of r0).
    Long,
    /// An `int` or `u32` (the low 32 bits of r0).
    Int,
    /// A `bool` (the low 8 bits).
    Bool,
    /// A pointer: NULL or not.
    Pointer,
}

const KFUNCS: [(&str, DynptrKfunc); 9] = [
    ("bpf_dynptr_from_xdp", DynptrKfunc::FromXdp),
    ("bpf_dynptr_from_skb", DynptrKfunc::FromSkb),
    ("bpf_dynptr_slice", DynptrKfunc::Slice),
    ("bpf_dynptr_slice_rdwr", DynptrKfunc::SliceRdwr),
    ("bpf_dynptr_size", DynptrKfunc::Size),
    ("bpf_dynptr_is_null", DynptrKfunc::IsNull),
    ("bpf_dynptr_is_rdonly", DynptrKfunc::IsRdonly),
    ("bpf_dynptr_adjust", DynptrKfunc::Adjust),
    ("bpf_dynptr_clone", DynptrKfunc::Clone),
];

impl DynptrKfunc {
    /// The kfunc called `name`, if it is one of these.
    pub fn from_name(name: &str) -> Option<DynptrKfunc> {
        KFUNCS.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
    }

    pub fn name(self) -> &'static str {
        KFUNCS
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("bpf_dynptr", |(n, _)| n)
    }

    /// Whether it makes a dynptr (the others take an existing one in r1).
    pub fn creates(self) -> bool {
        matches!(self, DynptrKfunc::FromXdp | DynptrKfunc::FromSkb)
    }

    pub fn returns(self) -> Returns {
        match self {
            DynptrKfunc::Slice | DynptrKfunc::SliceRdwr => Returns::Pointer,
            DynptrKfunc::IsNull | DynptrKfunc::IsRdonly => Returns::Bool,
            _ => Returns::Int,
        }
    }
}

/// The dynptr helpers, by their catalogue names (without `bpf_`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynptrHelper {
    /// `bpf_dynptr_read(dst, len, src, offset, flags)`
    Read,
    /// `bpf_dynptr_write(dst, offset, src, len, flags)`
    Write,
    /// `bpf_dynptr_data(ptr, offset, len)`
    Data,
}

impl DynptrHelper {
    pub fn from_name(name: &str) -> Option<DynptrHelper> {
        match name {
            "dynptr_read" => Some(DynptrHelper::Read),
            "dynptr_write" => Some(DynptrHelper::Write),
            "dynptr_data" => Some(DynptrHelper::Data),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DynptrHelper::Read => "bpf_dynptr_read",
            DynptrHelper::Write => "bpf_dynptr_write",
            DynptrHelper::Data => "bpf_dynptr_data",
        }
    }

    /// The argument (1-5) that points at the dynptr.
    pub fn dynptr_arg(self) -> usize {
        match self {
            DynptrHelper::Read => 3,
            DynptrHelper::Write | DynptrHelper::Data => 1,
        }
    }
}

/// A packet dynptr as the VM encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketDynptr {
    /// VM address of the context it was made from.
    pub ctx: u64,
    pub kind: PacketKind,
    pub rdonly: bool,
    /// From the packet's data pointer.
    pub offset: u32,
    pub size: u32,
}

impl PacketDynptr {
    pub fn to_bytes(self) -> [u8; DYNPTR_SIZE] {
        let mut b = [0; DYNPTR_SIZE];
        let mut word = (self.size & SIZE_MASK) | ((self.kind as u32) << TYPE_SHIFT);
        if self.rdonly {
            word |= RDONLY_BIT;
        }
        b[..8].copy_from_slice(&self.ctx.to_le_bytes());
        b[8..12].copy_from_slice(&word.to_le_bytes());
        b[12..].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    /// `bpf_dynptr_check_off_len`: `len` bytes at `offset` fit the dynptr.
    fn fits(self, offset: u32, len: u32) -> bool {
        len <= self.size && offset <= self.size - len
    }
}

/// What 16 dynptr bytes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// `data` is NULL: a dynptr a failed call left (all operations fail).
    Null,
    /// A packet dynptr this VM made from the context at `ctx`.
    Packet(PacketDynptr),
    /// Anything else (a local or ring-buffer dynptr, recorded kernel bytes).
    Other,
}

/// Reads the dynptr bytes; `ctx` is the VM address of the run's context.
pub fn decode(b: [u8; DYNPTR_SIZE], ctx: u64) -> Decoded {
    let data = u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let word = u32::from_le_bytes(b[8..12].try_into().unwrap_or([0; 4]));
    let offset = u32::from_le_bytes(b[12..].try_into().unwrap_or([0; 4]));
    if data == 0 {
        return Decoded::Null;
    }
    let kind = match (word >> TYPE_SHIFT) & 7 {
        3 => PacketKind::Skb,
        4 => PacketKind::Xdp,
        _ => return Decoded::Other,
    };
    if data != ctx {
        return Decoded::Other;
    }
    Decoded::Packet(PacketDynptr {
        ctx,
        kind,
        rdonly: word & RDONLY_BIT != 0,
        offset,
        size: word & SIZE_MASK,
    })
}

/// The dynptr `addr` points to, read through the VM's memory (faults on a
/// bad pointer).
pub fn read_dynptr(call: &HelperCall<'_>, addr: u64) -> Result<Decoded, Fault> {
    let bytes = call.read(addr, DYNPTR_SIZE)?;
    let mut raw = [0; DYNPTR_SIZE];
    raw.copy_from_slice(bytes);
    Ok(decode(raw, call.context_address()))
}

/// Whether `addr` points to a packet dynptr this VM made. The recorded
/// env carries out only those: any other (local, ring buffer, one made by
/// a kfunc not modelled here, a NULL one the kernel left) holds recorded
/// kernel bytes or none, and replays from the recording.
pub fn is_packet_dynptr(call: &HelperCall<'_>, addr: u64) -> bool {
    matches!(read_dynptr(call, addr), Ok(Decoded::Packet(_)))
}

/// `bpf_dynptr_clone(ptr, clone)` of a dynptr that is not a packet dynptr,
/// given the kernel's result: the kernel copies the 16 bytes (or NULLs the
/// clone when it fails), so recorded kernel bytes carry over to the clone
/// and calls on it replay from the recording too.
pub fn clone_recorded(call: &mut HelperCall<'_>, ret: u64) -> Result<(), Fault> {
    let bytes = if ret as u32 == 0 {
        call.read(call.arg(1), DYNPTR_SIZE)?.to_vec()
    } else {
        vec![0; DYNPTR_SIZE]
    };
    call.write(call.arg(2), &bytes)
}

/// `(data offset, length)` of the packet data in the packet region.
fn packet(id: i32, call: &HelperCall<'_>) -> Result<(u32, u32), Fault> {
    let (_, data, end, _) = call
        .memory()
        .packet_window()
        .ok_or_else(|| call.error(id, "a packet dynptr is used in a run that has no packet"))?;
    Ok((data, end - data))
}

fn errno(e: i32) -> u64 {
    (-i64::from(e)) as u64
}

/// An `int` result as the kernel leaves it in r0 (zero-extended).
fn int(v: i32) -> u64 {
    u64::from(v as u32)
}

/// Carries out `kfunc` on the VM's memory (`id`: its BTF id, for faults)
/// and returns r0.
pub fn call_kfunc(kfunc: DynptrKfunc, id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    match kfunc {
        DynptrKfunc::FromXdp => from_packet(PacketKind::Xdp, id, call),
        DynptrKfunc::FromSkb => from_packet(PacketKind::Skb, id, call),
        DynptrKfunc::Slice => slice(false, id, call),
        DynptrKfunc::SliceRdwr => slice(true, id, call),
        DynptrKfunc::Size => Ok(match existing(kfunc.name(), id, call, 1)? {
            Some(d) => u64::from(d.size),
            None => int(-EINVAL),
        }),
        DynptrKfunc::IsNull => Ok(u64::from(existing(kfunc.name(), id, call, 1)?.is_none())),
        DynptrKfunc::IsRdonly => Ok(u64::from(
            existing(kfunc.name(), id, call, 1)?.is_some_and(|d| d.rdonly),
        )),
        DynptrKfunc::Adjust => adjust(id, call),
        DynptrKfunc::Clone => {
            let target = call.arg(2);
            match existing(kfunc.name(), id, call, 1)? {
                Some(d) => {
                    call.write(target, &d.to_bytes())?;
                    Ok(0)
                }
                None => {
                    call.write(target, &[0; DYNPTR_SIZE])?;
                    Ok(int(-EINVAL))
                }
            }
        }
    }
}

/// The packet dynptr argument `n` points to (None: a NULL dynptr); a
/// dynptr of another kind is a fault naming the call.
fn existing(
    what: &str,
    id: i32,
    call: &HelperCall<'_>,
    n: usize,
) -> Result<Option<PacketDynptr>, Fault> {
    match read_dynptr(call, call.arg(n))? {
        Decoded::Null => Ok(None),
        Decoded::Packet(d) => Ok(Some(d)),
        Decoded::Other => Err(call.error(
            id,
            format!(
                "{what} is called on a dynptr that is not a packet dynptr; only packet dynptrs are carried out without a recording"
            ),
        )),
    }
}

/// `bpf_dynptr_from_xdp(ctx, flags, ptr)` / `bpf_dynptr_from_skb`.
fn from_packet(kind: PacketKind, id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    let (ctx, flags, target) = (call.arg(1), call.arg(2), call.arg(3));
    let layout = call.memory().context_layout().copied();
    // The verifier substitutes a read-only variant for programs that may
    // not write the packet (`may_access_direct_pkt_data`).
    let rdonly = match (kind, layout) {
        (PacketKind::Xdp, Some(ContextLayout::Xdp)) => false,
        (PacketKind::Skb, Some(ContextLayout::SkBuff(p))) => p != SkbProgram::Tc,
        _ => {
            let name = match kind {
                PacketKind::Xdp => "bpf_dynptr_from_xdp needs an XDP context",
                PacketKind::Skb => "bpf_dynptr_from_skb needs an __sk_buff context",
            };
            return Err(call.error(
                id,
                format!("{name}, but this run's context is another kind"),
            ));
        }
    };
    if flags != 0 {
        call.write(target, &[0; DYNPTR_SIZE])?;
        return Ok(int(-EINVAL));
    }
    let (_, len) = packet(id, call)?;
    let d = PacketDynptr {
        ctx,
        kind,
        rdonly,
        offset: 0,
        size: len,
    };
    call.write(target, &d.to_bytes())?;
    Ok(0)
}

/// Where `len` bytes at `at` (from the packet's data) are in the VM's
/// linear packet: `Some(address)` when they are all there (the address of
/// the first), None otherwise.
fn in_packet(id: i32, call: &HelperCall<'_>, at: u64, len: u64) -> Result<Option<u64>, Fault> {
    let (data, plen) = packet(id, call)?;
    Ok((at + len <= u64::from(plen)).then(|| address(ids::PACKET, u64::from(data) + at)))
}

/// `bpf_dynptr_slice(ptr, offset, buffer__opt, buffer__szk)` and `_rdwr`.
fn slice(rdwr: bool, id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    let name = if rdwr {
        DynptrKfunc::SliceRdwr.name()
    } else {
        DynptrKfunc::Slice.name()
    };
    // The buffer (r3) would only take a copy of bytes outside the linear
    // part, and the VM's packet is all linear.
    let (offset, len) = (call.arg(2) as u32, call.arg(4) as u32);
    let Some(d) = existing(name, id, call, 1)? else {
        return Ok(0);
    };
    if !d.fits(offset, len) || (rdwr && d.rdonly) {
        return Ok(0);
    }
    let at = u64::from(d.offset.wrapping_add(offset)); // u32, as in the kernel
    let (data, plen) = packet(id, call)?;
    let Some(addr) = in_packet(id, call, at, u64::from(len))? else {
        return Ok(0); // the packet shrank since the dynptr was made
    };
    Ok(match d.kind {
        // skb_header_pointer: inside the (linear) head, even 0 bytes at its end.
        PacketKind::Skb => addr,
        PacketKind::Xdp if at < u64::from(plen) => addr,
        // 0 bytes at the very end: bpf_xdp_pointer looks for them past the
        // linear part, moves the offset back by its size (to 0) without
        // moving the address, and hands out the start of the packet data.
        PacketKind::Xdp => address(ids::PACKET, u64::from(data)),
    })
}

/// `bpf_dynptr_adjust(ptr, start, end)`.
fn adjust(id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    let (target, start, end) = (call.arg(1), call.arg(2) as u32, call.arg(3) as u32);
    let Some(mut d) = existing(DynptrKfunc::Adjust.name(), id, call, 1)? else {
        return Ok(int(-EINVAL));
    };
    if start > end {
        return Ok(int(-EINVAL));
    }
    if start > d.size || end > d.size {
        return Ok(int(-ERANGE));
    }
    // A forged offset may be anything: the kernel's u32 addition wraps.
    d.offset = d.offset.wrapping_add(start);
    d.size = end - start;
    call.write(target, &d.to_bytes())?;
    Ok(0)
}

/// Carries out a dynptr helper on a packet dynptr (or a NULL one) and
/// returns r0 (`long` results sign-extended, as the kernel's).
pub fn call_helper(helper: DynptrHelper, id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    match helper {
        DynptrHelper::Read => read(id, call),
        DynptrHelper::Write => write(id, call),
        // Packet dynptrs never give direct data pointers through this
        // helper (programs use bpf_dynptr_slice): NULL, whatever the case.
        DynptrHelper::Data => existing(helper.name(), id, call, 1).map(|_| 0),
    }
}

/// `bpf_dynptr_read(dst, len, src, offset, flags)`.
fn read(id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    let (dst, len, offset, flags) = (
        call.arg(1),
        call.arg(2) as u32,
        call.arg(4) as u32,
        call.arg(5),
    );
    let Some(d) = existing(DynptrHelper::Read.name(), id, call, 3)? else {
        return Ok(errno(EINVAL));
    };
    if flags != 0 {
        return Ok(errno(EINVAL));
    }
    if !d.fits(offset, len) {
        return Ok(errno(E2BIG));
    }
    let at = u64::from(d.offset.wrapping_add(offset)); // u32, as in the kernel
    match (d.kind, in_packet(id, call, at, u64::from(len))?) {
        (_, Some(src)) => {
            let bytes = call.read(src, len as usize)?.to_vec();
            call.write(dst, &bytes)?;
            Ok(0)
        }
        // __bpf_skb_load_bytes clears the buffer when it fails.
        (PacketKind::Skb, None) => {
            call.write(dst, &vec![0; len as usize])?;
            Ok(errno(EFAULT))
        }
        // bpf_xdp_pointer: past the buffer's length.
        (PacketKind::Xdp, None) => Ok(errno(EINVAL)),
    }
}

/// `bpf_dynptr_write(dst, offset, src, len, flags)`.
fn write(id: i32, call: &mut HelperCall<'_>) -> Result<u64, Fault> {
    let (offset, src, len, flags) = (
        call.arg(2) as u32,
        call.arg(3),
        call.arg(4) as u32,
        call.arg(5),
    );
    let Some(d) = existing(DynptrHelper::Write.name(), id, call, 1)? else {
        return Ok(errno(EINVAL));
    };
    if d.rdonly {
        return Ok(errno(EINVAL));
    }
    if !d.fits(offset, len) {
        return Ok(errno(E2BIG));
    }
    let allowed = match d.kind {
        PacketKind::Skb => SKB_STORE_FLAGS,
        PacketKind::Xdp => 0,
    };
    if flags & !allowed != 0 {
        return Ok(errno(EINVAL));
    }
    let at = u64::from(d.offset.wrapping_add(offset)); // u32, as in the kernel
    let Some(target) = in_packet(id, call, at, u64::from(len))? else {
        return Ok(errno(match d.kind {
            PacketKind::Skb => EFAULT,
            PacketKind::Xdp => EINVAL,
        }));
    };
    let bytes = call.read(src, len as usize)?.to_vec();
    call.write(target, &bytes)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::{Memory, RegionKind};

    const PACKET: [u8; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

    /// Memory with a 10-byte packet (`layout`'s context) and two 16-byte
    /// dynptr slots and a 16-byte buffer: their addresses.
    fn memory(layout: ContextLayout) -> (Memory, u64, u64, u64) {
        let mut mem = Memory::default();
        mem.set_packet(&PACKET, 0, 0, PACKET.len() as u32, true);
        mem.set_context_layout(Some(layout));
        let slot = |mem: &mut Memory| {
            let id = mem.alloc(RegionKind::HelperBuffer { helper: 0 }, vec![0xaa; 16], true);
            address(id, 0)
        };
        let (a, b, c) = (slot(&mut mem), slot(&mut mem), slot(&mut mem));
        (mem, a, b, c)
    }

    fn ctx() -> u64 {
        address(ids::CONTEXT, 0)
    }

    fn kfunc(mem: &mut Memory, k: DynptrKfunc, args: [u64; 5]) -> u64 {
        let mut c = HelperCall::detached(mem, args);
        call_kfunc(k, 1, &mut c).unwrap()
    }

    fn helper(mem: &mut Memory, h: DynptrHelper, args: [u64; 5]) -> i64 {
        let mut c = HelperCall::detached(mem, args);
        call_helper(h, 2, &mut c).unwrap() as i64
    }

    fn xdp_dynptr() -> (Memory, u64, u64, u64) {
        let (mut mem, p, q, buf) = memory(ContextLayout::Xdp);
        assert_eq!(
            kfunc(&mut mem, DynptrKfunc::FromXdp, [ctx(), 0, p, 0, 0]),
            0
        );
        (mem, p, q, buf)
    }

    fn packet_addr(off: u64) -> u64 {
        address(ids::PACKET, off)
    }

    #[test]
    fn from_xdp_writes_the_kernel_layout_with_vm_values() {
        let (mut mem, p, ..) = xdp_dynptr();
        let c = HelperCall::detached(&mut mem, [0; 5]);
        let bytes = c.read(p, 16).unwrap().to_vec();
        assert_eq!(bytes[..8], ctx().to_le_bytes());
        assert_eq!(
            bytes[8..12],
            (10u32 | 4 << 28).to_le_bytes(),
            "size 10, XDP"
        );
        assert_eq!(bytes[12..], [0; 4], "offset 0");
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Size, [p, 0, 0, 0, 0]), 10);
        assert_eq!(kfunc(&mut mem, DynptrKfunc::IsNull, [p, 0, 0, 0, 0]), 0);
        assert_eq!(kfunc(&mut mem, DynptrKfunc::IsRdonly, [p, 0, 0, 0, 0]), 0);
    }

    #[test]
    fn bad_flags_are_einval_and_leave_a_null_dynptr() {
        let (mut mem, p, ..) = memory(ContextLayout::Xdp);
        let r = kfunc(&mut mem, DynptrKfunc::FromXdp, [ctx(), 1, p, 0, 0]);
        assert_eq!(r, int(-EINVAL));
        assert_eq!(kfunc(&mut mem, DynptrKfunc::IsNull, [p, 0, 0, 0, 0]), 1);
        assert_eq!(
            kfunc(&mut mem, DynptrKfunc::Size, [p, 0, 0, 0, 0]),
            int(-EINVAL)
        );
        assert_eq!(kfunc(&mut mem, DynptrKfunc::IsRdonly, [p, 0, 0, 0, 0]), 0);
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Slice, [p, 0, 0, 4, 0]), 0);
        let mut w = [0u64; 5];
        w[0] = p;
        assert_eq!(helper(&mut mem, DynptrHelper::Write, w), -22);
    }

    #[test]
    fn slices_point_into_the_packet_up_to_its_end_and_are_null_past_it() {
        let (mut mem, p, _, buf) = xdp_dynptr();
        let slice = |mem: &mut Memory, off: u64, len: u64| {
            kfunc(mem, DynptrKfunc::Slice, [p, off, buf, len, 0])
        };
        assert_eq!(slice(&mut mem, 0, 4), packet_addr(0));
        assert_eq!(
            slice(&mut mem, 6, 4),
            packet_addr(6),
            "offset + len == size"
        );
        assert_eq!(slice(&mut mem, 7, 4), 0, "one byte past the end");
        assert_eq!(slice(&mut mem, 0, 11), 0, "longer than the packet");
        assert_eq!(slice(&mut mem, u32::MAX as u64, 4), 0, "no wrap-around");
        assert_eq!(slice(&mut mem, 3, 0), packet_addr(3), "zero length inside");
        // Zero bytes at the very end: the kernel's bpf_xdp_pointer hands
        // out the start of the packet (with or without a buffer).
        assert_eq!(slice(&mut mem, 10, 0), packet_addr(0));
        let unbuffered = kfunc(&mut mem, DynptrKfunc::Slice, [p, 10, 0, 0, 0]);
        assert_eq!(unbuffered, packet_addr(0));
        assert_eq!(slice(&mut mem, 11, 0), 0);
        // Only the low 32 bits of offset and length count.
        assert_eq!(slice(&mut mem, 1 << 32 | 2, 1 << 32 | 2), packet_addr(2));
        let rw = kfunc(&mut mem, DynptrKfunc::SliceRdwr, [p, 2, buf, 2, 0]);
        assert_eq!(rw, packet_addr(2));
    }

    #[test]
    fn skb_slices_at_the_end_are_pointers_and_read_only_programs_get_read_only_dynptrs() {
        for (program, rdonly) in [
            (SkbProgram::Tc, false),
            (SkbProgram::SocketFilter, true),
            (SkbProgram::CgroupSkb, true),
        ] {
            let (mut mem, p, _, buf) = memory(ContextLayout::SkBuff(program));
            assert_eq!(
                kfunc(&mut mem, DynptrKfunc::FromSkb, [ctx(), 0, p, 0, 0]),
                0
            );
            let ro = kfunc(&mut mem, DynptrKfunc::IsRdonly, [p, 0, 0, 0, 0]);
            assert_eq!(ro, u64::from(rdonly), "{program:?}");
            let end = kfunc(&mut mem, DynptrKfunc::Slice, [p, 10, buf, 0, 0]);
            assert_eq!(end, packet_addr(10));
            let rw = kfunc(&mut mem, DynptrKfunc::SliceRdwr, [p, 0, buf, 4, 0]);
            assert_eq!(rw == 0, rdonly, "{program:?}: rdwr slice");
            // A read-only dynptr cannot be written: -EINVAL, packet unchanged.
            let w = helper(&mut mem, DynptrHelper::Write, [p, 0, buf, 4, 0]);
            assert_eq!(w, if rdonly { -22 } else { 0 }, "{program:?}");
            let first = mem.packet_data().unwrap()[0];
            assert_eq!(first, if rdonly { 0 } else { 0xaa }, "{program:?}");
        }
    }

    #[test]
    fn the_wrong_context_is_a_fault_not_a_panic() {
        let (mut mem, p, ..) = memory(ContextLayout::Xdp);
        let mut c = HelperCall::detached(&mut mem, [ctx(), 0, p, 0, 0]);
        let f = call_kfunc(DynptrKfunc::FromSkb, 7, &mut c).unwrap_err();
        assert!(f.to_string().contains("__sk_buff"), "{f}");
    }

    #[test]
    fn read_and_write_follow_the_kernel_checks() {
        let (mut mem, p, _, buf) = xdp_dynptr();
        // read(dst, len, src, offset, flags)
        assert_eq!(helper(&mut mem, DynptrHelper::Read, [buf, 4, p, 6, 0]), 0);
        let c = HelperCall::detached(&mut mem, [0; 5]);
        assert_eq!(c.read(buf, 5).unwrap(), [6, 7, 8, 9, 0xaa]);
        assert_eq!(helper(&mut mem, DynptrHelper::Read, [buf, 4, p, 7, 0]), -7);
        assert_eq!(helper(&mut mem, DynptrHelper::Read, [buf, 4, p, 0, 1]), -22);
        assert_eq!(helper(&mut mem, DynptrHelper::Read, [buf, 0, p, 10, 0]), 0);
        // write(dst, offset, src, len, flags)
        assert_eq!(helper(&mut mem, DynptrHelper::Write, [p, 8, buf, 2, 0]), 0);
        assert_eq!(mem.packet_data().unwrap(), [0, 1, 2, 3, 4, 5, 6, 7, 6, 7]);
        assert_eq!(helper(&mut mem, DynptrHelper::Write, [p, 9, buf, 2, 0]), -7);
        assert_eq!(
            helper(&mut mem, DynptrHelper::Write, [p, 0, buf, 2, 1]),
            -22
        );
        assert_eq!(mem.packet_data().unwrap()[..2], [0, 1], "unchanged");
        assert_eq!(helper(&mut mem, DynptrHelper::Data, [p, 0, 4, 0, 0]), 0);
    }

    #[test]
    fn skb_writes_take_the_store_bytes_flags() {
        let (mut mem, p, _, buf) = memory(ContextLayout::SkBuff(SkbProgram::Tc));
        kfunc(&mut mem, DynptrKfunc::FromSkb, [ctx(), 0, p, 0, 0]);
        assert_eq!(helper(&mut mem, DynptrHelper::Write, [p, 0, buf, 1, 3]), 0);
        assert_eq!(
            helper(&mut mem, DynptrHelper::Write, [p, 0, buf, 1, 4]),
            -22
        );
    }

    #[test]
    fn clone_and_adjust_make_a_window_with_its_own_offsets() {
        let (mut mem, p, q, buf) = xdp_dynptr();
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Clone, [p, q, 0, 0, 0]), 0);
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Adjust, [q, 2, 6, 0, 0]), 0);
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Size, [q, 0, 0, 0, 0]), 4);
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Size, [p, 0, 0, 0, 0]), 10);
        let s = kfunc(&mut mem, DynptrKfunc::Slice, [q, 1, buf, 3, 0]);
        assert_eq!(s, packet_addr(3));
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Slice, [q, 2, buf, 3, 0]), 0);
        assert_eq!(helper(&mut mem, DynptrHelper::Read, [buf, 1, q, 0, 0]), 0);
        let c = HelperCall::detached(&mut mem, [0; 5]);
        assert_eq!(c.read(buf, 1).unwrap(), [2]);
        let adj =
            |mem: &mut Memory, s: u64, e: u64| kfunc(mem, DynptrKfunc::Adjust, [q, s, e, 0, 0]);
        assert_eq!(adj(&mut mem, 3, 2), int(-EINVAL), "start > end");
        assert_eq!(adj(&mut mem, 0, 5), int(-ERANGE), "end past the size");
        assert_eq!(adj(&mut mem, 4, 4), 0, "an empty window");
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Size, [q, 0, 0, 0, 0]), 0);
        // Cloning a NULL dynptr: -EINVAL and a NULL clone.
        kfunc(&mut mem, DynptrKfunc::FromXdp, [ctx(), 2, p, 0, 0]);
        assert_eq!(
            kfunc(&mut mem, DynptrKfunc::Clone, [p, q, 0, 0, 0]),
            int(-EINVAL)
        );
        assert_eq!(kfunc(&mut mem, DynptrKfunc::IsNull, [q, 0, 0, 0, 0]), 1);
    }

    #[test]
    fn other_dynptrs_and_bad_pointers_fault_and_never_panic() {
        let (mut mem, p, q, _) = xdp_dynptr();
        // A dynptr that names another context, or of another type (local).
        let mut forged = PacketDynptr {
            ctx: ctx() + 8,
            kind: PacketKind::Xdp,
            rdonly: false,
            offset: 0,
            size: 4,
        }
        .to_bytes();
        assert_eq!(decode(forged, ctx()), Decoded::Other);
        forged[..8].copy_from_slice(&ctx().to_le_bytes());
        forged[11] = 1 << 4; // BPF_DYNPTR_TYPE_LOCAL
        assert_eq!(decode(forged, ctx()), Decoded::Other);
        HelperCall::detached(&mut mem, [0; 5])
            .write(p, &forged)
            .unwrap();
        let mut c = HelperCall::detached(&mut mem, [p, q, 0, 4, 0]);
        assert!(!is_packet_dynptr(&c, p));
        assert!(call_kfunc(DynptrKfunc::Slice, 1, &mut c).is_err());
        // Cloned as the kernel does: the bytes, or NULL when it failed.
        clone_recorded(&mut c, 0).unwrap();
        assert_eq!(c.read(q, 16).unwrap(), forged);
        clone_recorded(&mut c, int(-EINVAL)).unwrap();
        assert_eq!(c.read(q, 16).unwrap(), [0; 16]);
        for addr in [0, 0x1234, p + 8] {
            let mut c = HelperCall::detached(&mut mem, [addr, 0, 0, 4, 0]);
            assert!(!is_packet_dynptr(&c, addr));
            for (_, k) in KFUNCS.iter().filter(|(_, k)| !k.creates()) {
                assert!(
                    call_kfunc(*k, 1, &mut c).is_err(),
                    "{} on {addr:#x}",
                    k.name()
                );
            }
            let mut c = HelperCall::detached(&mut mem, [ctx(), 0, addr, 0, 0]);
            assert!(call_kfunc(DynptrKfunc::FromXdp, 1, &mut c).is_err());
        }
    }

    #[test]
    fn forged_offsets_and_sizes_stay_inside_the_packet() {
        let (mut mem, p, _, buf) = xdp_dynptr();
        let forged = PacketDynptr {
            ctx: ctx(),
            kind: PacketKind::Xdp,
            rdonly: false,
            offset: u32::MAX,
            size: SIZE_MASK,
        };
        HelperCall::detached(&mut mem, [0; 5])
            .write(p, &forged.to_bytes())
            .unwrap();
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Slice, [p, 0, buf, 4, 0]), 0);
        assert_eq!(helper(&mut mem, DynptrHelper::Read, [buf, 4, p, 0, 0]), -22);
        assert_eq!(
            helper(&mut mem, DynptrHelper::Write, [p, 0, buf, 4, 0]),
            -22
        );
        // The offset wraps as the kernel's u32 does: 1 past u32::MAX is 0.
        assert_eq!(kfunc(&mut mem, DynptrKfunc::Adjust, [p, 1, 5, 0, 0]), 0);
        let s = kfunc(&mut mem, DynptrKfunc::Slice, [p, 0, buf, 4, 0]);
        assert_eq!(s, packet_addr(0));
        assert_eq!(mem.packet_data().unwrap(), PACKET, "unchanged");
    }

    #[test]
    fn names_map_to_the_kfuncs_and_helpers_and_nothing_else() {
        for (name, k) in KFUNCS {
            assert_eq!(DynptrKfunc::from_name(name), Some(k));
            assert_eq!(k.name(), name);
        }
        assert_eq!(DynptrKfunc::from_name("bpf_dynptr_from_mem"), None);
        assert_eq!(DynptrKfunc::from_name("bpf_iter_num_new"), None);
        for h in [DynptrHelper::Read, DynptrHelper::Write, DynptrHelper::Data] {
            assert_eq!(DynptrHelper::from_name(&h.name()[4..]), Some(h));
        }
        assert_eq!(DynptrHelper::from_name("dynptr_from_mem"), None);
    }
}
