//! The machine's memory: typed regions behind tagged 64-bit addresses.
//!
//! An address is `region id << 40 | offset`. Pointer arithmetic therefore
//! works as in the kernel (`r10 - 8`, `data + 14`, `data_end - data` is the
//! packet length), and any access is checked against the region it names:
//! bounds, permission, liveness. Offsets a little below zero (up to 2^39)
//! are still attributed to their region, so `r10 - 520` faults as "stack
//! frame 0, offset -8" rather than as a wild pointer.
//!
//! Region ids are fixed for the regions every run has (null, 8 stack frames,
//! context, packet, input memory, code) and allocated upward from
//! [`ids::FIRST_DYNAMIC`] for the rest (map values, global data, ring-buffer
//! records, helper buffers). Ids are never reused within a machine, so a
//! dangling pointer to a freed region faults as "freed" instead of aliasing.

use std::fmt;

use bpfrr_trace::isa::opcode::MAX_CALL_FRAMES;

use super::context::{ContextLayout, xdp_md};
use super::fault::FaultKind;

/// Index of a region in [`Memory`].
pub type RegionId = u32;

/// Bits of an address that hold the offset inside its region.
pub const OFFSET_BITS: u32 = 40;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
const NEGATIVE_OFFSET: u64 = 1 << (OFFSET_BITS - 1);

/// The fixed region ids.
pub mod ids {
    use super::RegionId;
    /// Address 0 and its neighbourhood: never valid.
    pub const NULL: RegionId = 0;
    /// Stack frame `f` (0..8) is region `STACK0 + f`.
    pub const STACK0: RegionId = 1;
    pub const CONTEXT: RegionId = 9;
    pub const PACKET: RegionId = 10;
    /// The conformance suites' input memory (`Context::memory`).
    pub const INPUT: RegionId = 11;
    /// Code addresses (`ld_imm64` of a function, `callx` targets). Not readable.
    pub const CODE: RegionId = 12;
    /// First id handed out by [`super::Memory::alloc`].
    pub const FIRST_DYNAMIC: RegionId = 16;
}

/// Stack frame regions (`ids::STACK0 + 0..8`): the kernel's call depth.
const STACK_FRAMES: RegionId = MAX_CALL_FRAMES as RegionId;

/// Builds a tagged address.
pub fn address(region: RegionId, offset: u64) -> u64 {
    ((region as u64) << OFFSET_BITS).wrapping_add(offset)
}

/// Splits a tagged address into region and (possibly negative) offset.
pub fn split_address(addr: u64) -> (RegionId, i64) {
    let id = (addr >> OFFSET_BITS) as RegionId;
    let off = addr & OFFSET_MASK;
    if off >= NEGATIVE_OFFSET {
        (id.wrapping_add(1), off as i64 - (1i64 << OFFSET_BITS))
    } else {
        (id, off as i64)
    }
}

/// What a region holds. Shown in fault messages and memory views.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    Null,
    /// The stack of call frame `frame` (0 = the program's entry frame).
    Stack {
        frame: u8,
    },
    /// The program's context (`xdp_md`, `__sk_buff`, `pt_regs`, ...).
    Context,
    /// The packet buffer, metadata and data (`data_meta..data_end` is accessible).
    Packet,
    /// The conformance suites' input memory.
    Input,
    /// Code addresses; never readable or writable.
    Code,
    /// A map object (what `ld_imm64 map_fd` yields); not dereferenceable.
    Map {
        map: u32,
    },
    /// The value of one map entry.
    MapValue {
        map: u32,
        key: Vec<u8>,
    },
    /// A global-data map (`.data`, `.bss`, `.rodata`): one value.
    GlobalData {
        map: u32,
    },
    /// A reserved ring-buffer record.
    RingbufRecord {
        map: u32,
    },
    /// Memory a helper or kfunc returned a pointer to.
    HelperBuffer {
        helper: i32,
    },
}

impl fmt::Display for RegionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionKind::Null => write!(f, "the null page"),
            RegionKind::Stack { frame } => write!(f, "the stack of frame {frame}"),
            RegionKind::Context => write!(f, "the context"),
            RegionKind::Packet => write!(f, "the packet"),
            RegionKind::Input => write!(f, "the input memory"),
            RegionKind::Code => write!(f, "code"),
            RegionKind::Map { map } => write!(f, "map {map} (the map object)"),
            RegionKind::MapValue { map, key } => {
                write!(f, "a value of map {map} (key ")?;
                for b in key {
                    write!(f, "{b:02x}")?;
                }
                write!(f, ")")
            }
            RegionKind::GlobalData { map } => write!(f, "global data map {map}"),
            RegionKind::RingbufRecord { map } => write!(f, "a record of ring buffer {map}"),
            RegionKind::HelperBuffer { helper } => write!(f, "a buffer of helper {helper}"),
        }
    }
}

/// One region: its bytes, which part of them is accessible, and whether
/// the program may write them.
///
/// `repr(C)` for the order: what every load and store checks (the bytes,
/// the window, the flags) comes first, in the region's first cache line;
/// the kind, needed only to name the region in faults and views, last.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Region {
    bytes: Vec<u8>,
    /// Accessible offsets are `start..end` (the packet's window; else `0..len`).
    start: u32,
    end: u32,
    /// Live and not the context: the fast path may access the bytes directly.
    plain: bool,
    writable: bool,
    live: bool,
    kind: RegionKind,
}

impl Region {
    /// Whether a live region of this kind may be accessed directly by the fast path.
    fn is_plain(kind: &RegionKind) -> bool {
        !matches!(
            kind,
            RegionKind::Context | RegionKind::Code | RegionKind::Null
        )
    }

    fn new(kind: RegionKind, bytes: Vec<u8>, writable: bool) -> Region {
        let plain = Region::is_plain(&kind);
        Region {
            end: bytes.len() as u32,
            start: 0,
            kind,
            bytes,
            writable,
            live: true,
            plain,
        }
    }

    fn dead(kind: RegionKind) -> Region {
        Region {
            kind,
            bytes: Vec::new(),
            writable: false,
            start: 0,
            end: 0,
            live: false,
            plain: false,
        }
    }

    pub fn kind(&self) -> &RegionKind {
        &self.kind
    }
    /// All bytes of the region (for the packet: headroom and tailroom too).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The accessible bytes (`start..end`).
    pub fn window(&self) -> &[u8] {
        &self.bytes[self.start as usize..self.end as usize]
    }
    pub fn start(&self) -> u32 {
        self.start
    }
    pub fn end(&self) -> u32 {
        self.end
    }
    pub fn writable(&self) -> bool {
        self.writable
    }
    pub fn live(&self) -> bool {
        self.live
    }
}

/// A write the machine made, with the bytes it overwrote (for undo).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmallWrite {
    pub region: RegionId,
    pub offset: u32,
    pub len: u8,
    /// The old bytes, little-endian in the low `len` bytes.
    pub old: u64,
}

/// The three packet pointers as tagged addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketPointers {
    pub meta: u64,
    pub data: u64,
    pub end: u64,
}

/// All regions of one machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    regions: Vec<Region>,
    /// Offset of `data` inside the packet region (`start` is `data_meta`, `end` is `data_end`).
    packet_data: u32,
    ctx: Option<ContextLayout>,
    packet_span: PacketSpan,
    stack0: StackZeroed,
    callee_frames: CalleeFrames,
}

/// Where the packet region may differ from zero: `Some((lo, hi))` says every
/// byte outside `lo..hi` is zero. Packet buffers are built zero outside their
/// window (`Context::xdp`, `Context::skb`), and every access stays inside the
/// window, so the union of the windows a run has had is the only part the
/// next `set_packet` must clear and copy: a 64-byte packet in a 4 KiB XDP
/// frame costs a 64-byte copy rather than 4 KiB. `None`: unknown (copy all).
/// A cache hint, not machine state, so it does not take part in equality.
#[derive(Clone, Copy, Debug, Default)]
struct PacketSpan(Option<(u32, u32)>);

impl PartialEq for PacketSpan {
    fn eq(&self, _: &PacketSpan) -> bool {
        true
    }
}

impl Eq for PacketSpan {}

/// Whether stack frame 0's bytes are all zero since they were last zeroed
/// (`set_fixed_zeroed`): every way of writing into that region clears it,
/// so a run that wrote nothing there (no stores in line, no helper
/// writes, no undo) leaves a stack the next run can start on without
/// zeroing its 512 bytes again. A cache hint, not machine state, so it
/// does not take part in equality.
#[derive(Clone, Copy, Debug, Default)]
struct StackZeroed(bool);

impl PartialEq for StackZeroed {
    fn eq(&self, _: &StackZeroed) -> bool {
        true
    }
}

impl Eq for StackZeroed {}

/// How many callee stack frames (regions `STACK0 + 1 ..`) may be live or
/// hold bytes: every frame past the first `n` is as `Region::dead` made it,
/// so a run's start kills only the first `n` (`kill_call_frames`). Raised
/// wherever a frame region is made live or given bytes (`revive_fixed`,
/// `put_region`, `set_bytes`). A cache hint, not machine state, so it does
/// not take part in equality.
#[derive(Clone, Copy, Debug)]
struct CalleeFrames(u32);

impl PartialEq for CalleeFrames {
    fn eq(&self, _: &CalleeFrames) -> bool {
        true
    }
}

impl Eq for CalleeFrames {}

impl PacketSpan {
    fn widen(&mut self, lo: u32, hi: u32) {
        if let Some((a, b)) = self.0 {
            self.0 = Some((a.min(lo), b.max(hi)));
        }
    }
}

impl Default for Memory {
    fn default() -> Self {
        Memory::new()
    }
}

/// The little-endian value of 1-8 bytes. The access sizes get their own
/// arms so they compile to single loads rather than a `memcpy` call.
#[inline(always)]
fn le_value(b: &[u8]) -> u64 {
    match *b {
        [x] => x as u64,
        [x0, x1] => u16::from_le_bytes([x0, x1]) as u64,
        [x0, x1, x2, x3] => u32::from_le_bytes([x0, x1, x2, x3]) as u64,
        [x0, x1, x2, x3, x4, x5, x6, x7] => u64::from_le_bytes([x0, x1, x2, x3, x4, x5, x6, x7]),
        _ => {
            let mut a = [0u8; 8];
            a[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(a)
        }
    }
}

/// Writes the low `dst.len()` (1-8) bytes of `v`, little-endian; single
/// stores for the access sizes, as `le_value`. Byte by byte, which the
/// compiler merges into one store per size: `copy_from_slice` arms were
/// merged into one `memcpy` call of variable length instead.
#[inline(always)]
fn put_le(dst: &mut [u8], v: u64) {
    match dst {
        [x] => *x = v as u8,
        [x0, x1] => [*x0, *x1] = (v as u16).to_le_bytes(),
        [x0, x1, x2, x3] => [*x0, *x1, *x2, *x3] = (v as u32).to_le_bytes(),
        [x0, x1, x2, x3, x4, x5, x6, x7] => {
            [*x0, *x1, *x2, *x3, *x4, *x5, *x6, *x7] = v.to_le_bytes()
        }
        _ => {
            let n = dst.len();
            dst.copy_from_slice(&v.to_le_bytes()[..n])
        }
    }
}

/// The little-endian value of the first `size` bytes of `b`, with one load
/// of that size; None when `b` is shorter. `size` is an op's access size,
/// 1, 2, 4 or 8 (`Size::bytes`): the last arm takes 1 (four arms compile to
/// compares; a fifth for other sizes made a jump table). Reading exactly
/// the access's bytes (not eight, masked) lets the load take its value
/// from a store of the same size just before it: a wider load over a
/// narrower store waits for the store to complete.
#[inline(always)]
fn get_sized(b: &[u8], size: usize) -> Option<u64> {
    debug_assert!(matches!(size, 1 | 2 | 4 | 8), "access size {size}");
    Some(match size {
        8 => u64::from_le_bytes(*b.first_chunk::<8>()?),
        4 => u32::from_le_bytes(*b.first_chunk::<4>()?) as u64,
        2 => u16::from_le_bytes(*b.first_chunk::<2>()?) as u64,
        _ => *b.first()? as u64,
    })
}

/// Writes the low `size` bytes of `v` at the start of `dst`, little-endian,
/// with one store of that size; false when `dst` is shorter. `size` as in
/// `get_sized`.
#[inline(always)]
fn put_sized(dst: &mut [u8], size: usize, v: u64) -> bool {
    debug_assert!(matches!(size, 1 | 2 | 4 | 8), "access size {size}");
    match size {
        8 => dst.first_chunk_mut::<8>().map(|d| *d = v.to_le_bytes()),
        4 => dst
            .first_chunk_mut::<4>()
            .map(|d| *d = (v as u32).to_le_bytes()),
        2 => dst
            .first_chunk_mut::<2>()
            .map(|d| *d = (v as u16).to_le_bytes()),
        _ => dst.first_mut().map(|d| *d = v as u8),
    }
    .is_some()
}

/// The packet pointers, from the region table and the offset of `data`.
#[inline(always)]
fn packet_pointers_in(regions: &[Region], packet_data: u32) -> Option<PacketPointers> {
    let r = &regions[ids::PACKET as usize];
    r.live.then(|| PacketPointers {
        meta: address(ids::PACKET, r.start as u64),
        data: address(ids::PACKET, packet_data as u64),
        end: address(ids::PACKET, r.end as u64),
    })
}

/// What a context load needs besides the region table: the layout that
/// converts it and the packet's `data` offset. Small and `Copy`, so the
/// straight-line loop carries it without holding `Memory`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ContextView {
    layout: Option<ContextLayout>,
    packet_data: u32,
}

/// A load from the context, converted as the kernel does (`data` and
/// `data_end` become packet pointers); None for any other address and for
/// a load the layout refuses (the general loop then reports the fault).
/// For the straight-line loop, where a context load is a miss of
/// `load_plain_in`: out of line, so that the loop's common path stays as it is.
#[cold]
#[inline(never)]
pub(crate) fn context_load_in(
    regions: &[Region],
    view: ContextView,
    addr: u64,
    size: usize,
) -> Option<u64> {
    let (id, offset) = split_address(addr);
    let layout = view.layout?;
    let r = regions.get(id as usize)?;
    if id != ids::CONTEXT || !r.live {
        return None;
    }
    // `xdp_md`'s packet pointers, read by every XDP program, without
    // `ContextLayout::load`'s general checks and its large error type: an
    // aligned 4-byte load inside the structure, exactly when `load` returns
    // the pointer (no packet: `load` refuses, and so does this).
    if matches!(layout, ContextLayout::Xdp)
        && size == 4
        && matches!(offset, xdp_md::DATA | xdp_md::DATA_END | xdp_md::DATA_META)
        && offset as usize + 4 <= r.bytes.len()
    {
        let p = packet_pointers_in(regions, view.packet_data)?;
        return Some(match offset {
            xdp_md::DATA => p.data,
            xdp_md::DATA_END => p.end,
            _ => p.meta,
        });
    }
    layout
        .load(
            packet_pointers_in(regions, view.packet_data),
            &r.bytes,
            offset,
            size,
        )
        .ok()
}

/// `Memory::load_plain` on the region table itself.
#[inline(always)]
pub(crate) fn load_plain_in(regions: &[Region], addr: u64, size: usize) -> Option<u64> {
    let id = (addr >> OFFSET_BITS) as usize;
    let off = addr & OFFSET_MASK;
    let r = regions.get(id)?;
    let end = off + size as u64;
    if !(r.plain && off >= r.start as u64 && end <= r.end as u64) {
        return None;
    }
    // Eight bytes from `off` when the buffer holds them, masked to the
    // access size: one move instead of a second dispatch on the size.
    // Bytes past `end` are read but masked away.
    Some(
        match r
            .bytes
            .get(off as usize..)
            .and_then(|b| b.first_chunk::<8>())
        {
            Some(b) => u64::from_le_bytes(*b) & (u64::MAX >> ((64 - 8 * size as u32) & 63)),
            None => le_value(&r.bytes[off as usize..end as usize]),
        },
    )
}

/// `Memory::store_plain` on the region table itself. Stores stay inside
/// the packet's window, so the packet span needs no widening here.
#[inline(always)]
pub(crate) fn store_plain_in<const RECORD: bool>(
    regions: &mut [Region],
    addr: u64,
    size: usize,
    value: u64,
) -> Option<Option<SmallWrite>> {
    let id = (addr >> OFFSET_BITS) as usize;
    let off = addr & OFFSET_MASK;
    let r = regions.get_mut(id)?;
    let end = off + size as u64;
    if !(r.plain && r.writable && off >= r.start as u64 && end <= r.end as u64) {
        return None;
    }
    let dst = &mut r.bytes[off as usize..end as usize];
    let undo = RECORD.then(|| SmallWrite {
        region: id as RegionId,
        offset: off as u32,
        len: size as u8,
        old: le_value(dst),
    });
    put_le(dst, value);
    Some(undo)
}

/// Which region r10 points into, checked once when the straight-line loop
/// starts, so that its r10-based accesses (`Op::LoadFp`, `StoreFpR`,
/// `StoreFpI`) need only their offset against the region's buffer. Within
/// one call of the loop r10 cannot change (no instruction writes it;
/// sessions set registers only between runs and steps) and no region
/// changes shape, so what is checked here holds for every access of that
/// call. Kept to one index: the loop has few machine registers to spare.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameView {
    /// The region r10 points into, when it is plain and its whole buffer is
    /// accessible; else `usize::MAX` (no region has that index).
    id: usize,
}

impl FrameView {
    /// No shortcut: every r10-based access takes the general check.
    pub(crate) const NONE: FrameView = FrameView { id: usize::MAX };

    /// The view of the region `fp` (r10's value) points into. Anything the
    /// check cannot vouch for (a packet window, the context, null, a dead
    /// region, an id past the table) gives `NONE`.
    #[inline(always)]
    pub(crate) fn new(regions: &[Region], fp: u64) -> FrameView {
        let id = (fp >> OFFSET_BITS) as usize;
        match regions.get(id) {
            Some(r) if r.plain && r.start == 0 && r.end as usize == r.bytes.len() => {
                FrameView { id }
            }
            _ => FrameView::NONE,
        }
    }
}

/// `load_plain_in` of `fp + off` (`fp`: r10, as when `view` was made)
/// through the frame view: the same value whenever it gives one. The view
/// vouches for the region (plain, the whole buffer accessible), so only
/// the offset is checked, by the slice itself; an offset below the
/// region's start wraps to a huge index and misses. None sends the access
/// to the general check.
#[inline(always)]
pub(crate) fn frame_load_in(
    regions: &[Region],
    view: FrameView,
    fp: u64,
    off: i16,
    size: usize,
) -> Option<u64> {
    let at = usize::try_from((fp & OFFSET_MASK).wrapping_add(off as i64 as u64)).ok()?;
    get_sized(regions.get(view.id)?.bytes.get(at..)?, size)
}

/// `store_plain_in::<false>` of `fp + off` through the frame view, as
/// `frame_load_in` (the region's `writable` is checked here: a view is for
/// loads and stores); false sends the access to the general check.
#[inline(always)]
pub(crate) fn frame_store_in(
    regions: &mut [Region],
    view: FrameView,
    fp: u64,
    off: i16,
    size: usize,
    value: u64,
) -> bool {
    let Ok(at) = usize::try_from((fp & OFFSET_MASK).wrapping_add(off as i64 as u64)) else {
        return false;
    };
    match regions.get_mut(view.id) {
        Some(r) if r.writable => match r.bytes.get_mut(at..) {
            Some(dst) => put_sized(dst, size, value),
            None => false,
        },
        _ => false,
    }
}

impl Memory {
    /// Memory with the fixed regions, all empty.
    pub fn new() -> Memory {
        let mut regions = Vec::with_capacity(ids::FIRST_DYNAMIC as usize);
        for id in 0..ids::FIRST_DYNAMIC {
            let kind = match id {
                ids::NULL => RegionKind::Null,
                f if (ids::STACK0..ids::STACK0 + STACK_FRAMES).contains(&f) => RegionKind::Stack {
                    frame: (f - ids::STACK0) as u8,
                },
                ids::CONTEXT => RegionKind::Context,
                ids::PACKET => RegionKind::Packet,
                ids::INPUT => RegionKind::Input,
                _ => RegionKind::Code,
            };
            let mut r = Region::dead(kind);
            // Code addresses exist (callx targets) but have no bytes.
            r.live = id == ids::CODE;
            regions.push(r);
        }
        Memory {
            regions,
            packet_data: 0,
            ctx: None,
            packet_span: PacketSpan::default(),
            stack0: StackZeroed::default(),
            callee_frames: CalleeFrames(0),
        }
    }

    /// The region with this id, live or freed.
    pub fn region(&self, id: RegionId) -> Option<&Region> {
        self.regions.get(id as usize)
    }

    /// Number of region ids in use (fixed ones included).
    pub fn region_count(&self) -> usize {
        self.regions.len()
    }

    /// Iterates over live regions with their ids.
    pub fn live_regions(&self) -> impl Iterator<Item = (RegionId, &Region)> {
        self.regions
            .iter()
            .enumerate()
            .filter(|(_, r)| r.live)
            .map(|(i, r)| (i as RegionId, r))
    }

    /// Adds a region and returns its id; its address is `address(id, 0)`.
    pub fn alloc(&mut self, kind: RegionKind, bytes: Vec<u8>, writable: bool) -> RegionId {
        let id = self.regions.len() as RegionId;
        self.regions.push(Region::new(kind, bytes, writable));
        id
    }

    /// Marks a dynamic region freed: later accesses fault as use-after-free.
    /// Returns the region as it was, for undo.
    pub fn free(&mut self, id: RegionId) -> Option<Region> {
        if id < ids::FIRST_DYNAMIC {
            return None;
        }
        let r = self.regions.get_mut(id as usize)?;
        let kind = r.kind.clone();
        Some(std::mem::replace(r, Region::dead(kind)))
    }

    /// Replaces a region's bytes (a map value reseeded, a packet grown).
    /// The accessible window becomes the whole region (packet: see `set_packet_window`).
    pub fn set_bytes(&mut self, id: RegionId, bytes: Vec<u8>) -> Option<Region> {
        if id == ids::PACKET {
            self.packet_span = PacketSpan::default();
        }
        self.written(id);
        self.frame_revived(id);
        let r = self.regions.get_mut(id as usize)?;
        let old = r.clone();
        r.end = bytes.len() as u32;
        r.start = 0;
        r.bytes = bytes;
        Some(old)
    }

    pub(crate) fn put_region(&mut self, id: RegionId, region: Region) {
        if id == ids::PACKET {
            self.packet_span = PacketSpan::default();
        }
        self.written(id);
        self.frame_revived(id);
        if let Some(r) = self.regions.get_mut(id as usize) {
            *r = region;
        }
    }

    pub(crate) fn truncate_regions(&mut self, len: usize) {
        self.regions.truncate(len.max(ids::FIRST_DYNAMIC as usize));
    }

    /// Makes fixed region `id` live with a copy of `bytes`. Fixed regions
    /// are set up on every run and call, so their buffers are reused.
    pub(crate) fn set_fixed(&mut self, id: RegionId, bytes: &[u8], writable: bool) {
        self.revive_fixed(id, writable, |b| b.extend_from_slice(bytes));
    }

    /// Makes fixed region `id` live with `len` zero bytes (a fresh stack
    /// frame). Frame 0 is not zeroed again when it already is (live, the
    /// same size and permission, and nothing written since it was zeroed).
    /// Inline, so that a run's start makes no call when frame 0 is zero.
    #[inline]
    pub(crate) fn set_fixed_zeroed(&mut self, id: RegionId, len: usize, writable: bool) {
        if id == ids::STACK0 && self.stack0.0 {
            let r = &self.regions[id as usize];
            if r.live && r.writable == writable && r.bytes.len() == len {
                return;
            }
        }
        self.zero_fixed(id, len, writable);
    }

    /// `set_fixed_zeroed` when the region must be zeroed.
    fn zero_fixed(&mut self, id: RegionId, len: usize, writable: bool) {
        self.revive_fixed(id, writable, |b| b.resize(len, 0));
        if id == ids::STACK0 {
            self.stack0 = StackZeroed(true);
        }
    }

    /// Notes that region `id` may have been made live or given bytes.
    #[inline(always)]
    fn frame_revived(&mut self, id: RegionId) {
        if let Some(f) = id.checked_sub(ids::STACK0)
            && (1..STACK_FRAMES).contains(&f)
            && self.callee_frames.0 < f
        {
            self.callee_frames = CalleeFrames(f);
        }
    }

    /// Notes that region `id`'s bytes may have changed.
    #[inline(always)]
    fn written(&mut self, id: RegionId) {
        if id == ids::STACK0 {
            self.stack0 = StackZeroed(false);
        }
    }

    fn revive_fixed(&mut self, id: RegionId, writable: bool, fill: impl FnOnce(&mut Vec<u8>)) {
        if id == ids::PACKET {
            self.packet_span = PacketSpan::default();
        }
        self.written(id);
        self.frame_revived(id);
        let r = &mut self.regions[id as usize];
        r.bytes.clear();
        fill(&mut r.bytes);
        r.start = 0;
        r.end = r.bytes.len() as u32;
        r.writable = writable;
        r.live = true;
        r.plain = Region::is_plain(&r.kind);
    }

    /// Makes fixed region `id` dead (as `Region::dead`), keeping its buffer for reuse.
    pub(crate) fn kill_fixed(&mut self, id: RegionId) {
        if id == ids::PACKET {
            self.packet_span = PacketSpan::default();
            // As a fresh memory's: a run without a packet starts from the
            // same state whatever packet the run before had.
            self.packet_data = 0;
        }
        self.written(id);
        make_dead(&mut self.regions[id as usize]);
    }

    /// Makes every callee stack frame (1-7) dead, as `kill_fixed` does one
    /// by one (a run's start: only frame 0 is live). Only the frames that
    /// may be live (`CalleeFrames`), as one slice; a frame's death touches
    /// neither the packet span nor frame 0's zeroed mark.
    pub(crate) fn kill_call_frames(&mut self) {
        let first = ids::STACK0 as usize + 1;
        let n = (self.callee_frames.0 as usize).min(STACK_FRAMES as usize - 1);
        self.callee_frames = CalleeFrames(0);
        for r in &mut self.regions[first..first + n] {
            make_dead(r);
        }
    }

    pub(crate) fn set_context_layout(&mut self, layout: Option<ContextLayout>) {
        self.ctx = layout;
    }

    /// The context layout of the current run, if a context was given.
    pub fn context_layout(&self) -> Option<&ContextLayout> {
        self.ctx.as_ref()
    }

    // ---- the packet -------------------------------------------------------

    /// The packet pointers, if the run has a packet.
    pub fn packet(&self) -> Option<PacketPointers> {
        packet_pointers_in(&self.regions, self.packet_data)
    }

    /// The packet data (`data..data_end`).
    pub fn packet_data(&self) -> Option<&[u8]> {
        let r = &self.regions[ids::PACKET as usize];
        r.live
            .then(|| &r.bytes[self.packet_data as usize..r.end as usize])
    }

    /// The packet metadata (`data_meta..data`).
    pub fn packet_meta(&self) -> Option<&[u8]> {
        let r = &self.regions[ids::PACKET as usize];
        r.live
            .then(|| &r.bytes[r.start as usize..self.packet_data as usize])
    }

    /// `(meta, data, end, capacity)` offsets inside the packet region.
    pub fn packet_window(&self) -> Option<(u32, u32, u32, u32)> {
        let r = &self.regions[ids::PACKET as usize];
        r.live
            .then_some((r.start, self.packet_data, r.end, r.bytes.len() as u32))
    }

    /// Moves the packet pointers (what `xdp_adjust_head/tail/meta` do).
    /// Requires `meta <= data <= end <= capacity`.
    pub fn set_packet_window(&mut self, meta: u32, data: u32, end: u32) -> Result<(), String> {
        let r = &mut self.regions[ids::PACKET as usize];
        if !r.live {
            return Err("this run has no packet".into());
        }
        if !(meta <= data && data <= end && end as usize <= r.bytes.len()) {
            return Err(format!(
                "packet window {meta}..{data}..{end} does not fit a buffer of {} bytes",
                r.bytes.len()
            ));
        }
        r.start = meta;
        r.end = end;
        self.packet_data = data;
        self.packet_span.widen(meta, end);
        Ok(())
    }

    pub(crate) fn set_packet(
        &mut self,
        buffer: &[u8],
        meta: u32,
        data: u32,
        end: u32,
        writable: bool,
    ) {
        let (m, e) = (meta as usize, end as usize);
        let r = &mut self.regions[ids::PACKET as usize];
        match self.packet_span.0 {
            // Same frame size as the last run: clear what that run may have
            // touched and copy the new window (zero elsewhere in `buffer`).
            Some((lo, hi)) if r.bytes.len() == buffer.len() && buffer.len() >= e => {
                let hi = (hi as usize).min(r.bytes.len());
                let lo = (lo as usize).min(hi);
                // Cleared around the new window, which the copy overwrites.
                let (below, above) = (m.clamp(lo, hi), e.clamp(lo, hi));
                if lo < below {
                    r.bytes[lo..below].fill(0);
                }
                if above < hi {
                    r.bytes[above..hi].fill(0);
                }
                r.bytes[m..e].copy_from_slice(&buffer[m..e]);
                r.writable = writable;
                r.live = true;
                r.plain = Region::is_plain(&r.kind);
            }
            _ => self.set_fixed(ids::PACKET, buffer, writable),
        }
        let r = &mut self.regions[ids::PACKET as usize];
        r.start = meta;
        r.end = end;
        self.packet_data = data;
        self.packet_span = PacketSpan(Some((meta, end)));
    }

    pub(crate) fn packet_data_offset(&self) -> u32 {
        self.packet_data
    }

    pub(crate) fn set_packet_data_offset(&mut self, data: u32) {
        self.packet_data = data;
    }

    // ---- checked access ---------------------------------------------------

    /// Explains why an access at `addr` is not allowed.
    pub fn fault_for(&self, addr: u64, size: usize, write: bool) -> FaultKind {
        let (id, offset) = split_address(addr);
        let Some(r) = self.regions.get(id as usize) else {
            return FaultKind::NoRegion { addr, size, write };
        };
        match r.kind {
            RegionKind::Null => return FaultKind::NoRegion { addr, size, write },
            RegionKind::Code => return FaultKind::NoRegion { addr, size, write },
            _ => {}
        }
        if !r.live {
            if id >= ids::FIRST_DYNAMIC {
                return FaultKind::Freed {
                    region: r.kind.clone(),
                    offset,
                    size,
                };
            }
            return FaultKind::NoRegion { addr, size, write };
        }
        let inside = offset >= r.start as i64 && offset + size as i64 <= r.end as i64;
        if inside && write && !r.writable {
            return FaultKind::ReadOnly {
                region: r.kind.clone(),
                offset,
                size,
            };
        }
        FaultKind::OutOfBounds {
            region: r.kind.clone(),
            offset,
            size,
            start: r.start,
            end: r.end,
            write,
        }
    }

    /// Loads `size` (1, 2, 4, 8) bytes, little-endian, zero-extended.
    /// Context fields load as the kernel's context conversion would.
    #[inline(always)]
    pub fn load(&self, addr: u64, size: usize) -> Result<u64, FaultKind> {
        match self.load_plain(addr, size) {
            Some(v) => Ok(v),
            None => self.load_slow(addr, size),
        }
    }

    /// The fast part of `load`: an in-bounds access to a plain region, or None.
    #[inline(always)]
    pub(crate) fn load_plain(&self, addr: u64, size: usize) -> Option<u64> {
        load_plain_in(&self.regions, addr, size)
    }

    /// The region table, for the straight-line loop (`load_plain_in`,
    /// `store_plain_in`): taken once per entry into the loop, so that the
    /// table's address stays in a register instead of being reloaded
    /// through `Memory` on every access; with it, what context loads need
    /// (`context_load_in`). `stores`: whether the loop may store (the
    /// program has plain stores, `Program::stores_in_line`); the loop
    /// writes nothing else.
    #[inline(always)]
    pub(crate) fn straight_parts(&mut self, stores: bool) -> (&mut [Region], ContextView) {
        if stores {
            self.stack0 = StackZeroed(false);
        }
        let view = ContextView {
            layout: self.ctx,
            packet_data: self.packet_data,
        };
        (&mut self.regions, view)
    }

    #[cold]
    fn load_slow(&self, addr: u64, size: usize) -> Result<u64, FaultKind> {
        let (id, offset) = split_address(addr);
        if id == ids::CONTEXT
            && let Some(layout) = &self.ctx
        {
            let r = &self.regions[id as usize];
            if r.live {
                return layout.load(self.packet(), &r.bytes, offset, size);
            }
        }
        Err(self.fault_for(addr, size, false))
    }

    /// Stores the low `size` bytes of `value`. With `RECORD`, returns the old bytes.
    #[inline(always)]
    pub(crate) fn store<const RECORD: bool>(
        &mut self,
        addr: u64,
        size: usize,
        value: u64,
    ) -> Result<Option<SmallWrite>, FaultKind> {
        match self.store_plain::<RECORD>(addr, size, value) {
            Some(undo) => Ok(undo),
            None => self.store_slow(addr, size, value),
        }
    }

    /// The fast part of `store`: an in-bounds write to a plain writable
    /// region (Some, with the old bytes when recording), or None.
    #[inline(always)]
    pub(crate) fn store_plain<const RECORD: bool>(
        &mut self,
        addr: u64,
        size: usize,
        value: u64,
    ) -> Option<Option<SmallWrite>> {
        self.written(split_address(addr).0);
        store_plain_in::<RECORD>(&mut self.regions, addr, size, value)
    }

    #[cold]
    fn store_slow(
        &mut self,
        addr: u64,
        size: usize,
        value: u64,
    ) -> Result<Option<SmallWrite>, FaultKind> {
        let (id, offset) = split_address(addr);
        if id == ids::CONTEXT
            && let Some(layout) = &self.ctx
            && self.regions[id as usize].live
        {
            layout.check_store(offset, size)?;
            let r = &mut self.regions[id as usize];
            let o = offset as usize;
            let dst = &mut r.bytes[o..o + size];
            let undo = SmallWrite {
                region: id,
                offset: o as u32,
                len: size as u8,
                old: le_value(dst),
            };
            put_le(dst, value);
            return Ok(Some(undo));
        }
        Err(self.fault_for(addr, size, true))
    }

    /// Reads `len` bytes at `addr` (for helpers). The context is readable as raw bytes.
    pub fn read(&self, addr: u64, len: usize) -> Result<&[u8], FaultKind> {
        let (id, offset) = split_address(addr);
        if let Some(r) = self.regions.get(id as usize)
            && r.live
            && r.kind != RegionKind::Code
            && r.kind != RegionKind::Null
            && offset >= r.start as i64
            && offset + len as i64 <= r.end as i64
        {
            return Ok(&r.bytes[offset as usize..offset as usize + len]);
        }
        Err(self.fault_for(addr, len.max(1), false))
    }

    /// Writes bytes at `addr` (for helpers); returns the region, offset and the old bytes.
    /// The context cannot be written this way.
    pub fn write(
        &mut self,
        addr: u64,
        bytes: &[u8],
    ) -> Result<(RegionId, u32, Vec<u8>), FaultKind> {
        let (id, offset) = split_address(addr);
        self.written(id);
        if let Some(r) = self.regions.get_mut(id as usize)
            && r.plain
            && r.writable
            && offset >= r.start as i64
            && offset + bytes.len() as i64 <= r.end as i64
        {
            let o = offset as usize;
            let dst = &mut r.bytes[o..o + bytes.len()];
            let old = dst.to_vec();
            dst.copy_from_slice(bytes);
            return Ok((id, o as u32, old));
        }
        Err(self.fault_for(addr, bytes.len().max(1), true))
    }

    /// Puts old bytes back (undo of a write).
    pub(crate) fn restore(&mut self, id: RegionId, offset: u32, old: &[u8]) {
        if id == ids::PACKET {
            self.packet_span
                .widen(offset, offset.saturating_add(old.len() as u32));
        }
        self.written(id);
        if let Some(r) = self.regions.get_mut(id as usize) {
            let o = offset as usize;
            if let Some(dst) = r.bytes.get_mut(o..o + old.len()) {
                dst.copy_from_slice(old);
            }
        }
    }

    pub(crate) fn restore_small(&mut self, w: &SmallWrite) {
        let bytes = w.old.to_le_bytes();
        self.restore(w.region, w.offset, &bytes[..w.len as usize]);
    }
}

/// Makes a region dead (as `Region::dead`), keeping its buffer for reuse;
/// a region already dead and empty is left untouched.
#[inline]
fn make_dead(r: &mut Region) {
    if r.live || !r.bytes.is_empty() {
        r.bytes.clear();
        r.start = 0;
        r.end = 0;
        r.writable = false;
        r.live = false;
        r.plain = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_packet_overwrites_everything_the_last_run_touched() {
        let mut buf = vec![0u8; 64];
        buf[16..24].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut m = Memory::new();
        m.set_packet(&buf, 16, 16, 24, true);
        // The run grows the window both ways and writes at its new edges.
        m.set_packet_window(4, 4, 48).unwrap();
        m.store::<false>(address(ids::PACKET, 4), 4, u32::MAX as u64)
            .unwrap();
        m.store::<false>(address(ids::PACKET, 40), 8, u64::MAX)
            .unwrap();
        m.set_packet(&buf, 16, 16, 24, true);
        assert_eq!(m.region(ids::PACKET).unwrap().bytes(), &buf[..]);
        assert_eq!(m.packet_data(), Some(&buf[16..24]));
        // A helper's undone write outside the current window is cleared too.
        m.restore(ids::PACKET, 60, &[9, 9]);
        m.set_packet(&buf, 16, 16, 24, true);
        assert_eq!(m.region(ids::PACKET).unwrap().bytes(), &buf[..]);
        // A frame of another size is copied whole.
        let small = vec![7u8; 32];
        m.set_packet(&small, 0, 0, 32, true);
        assert_eq!(m.region(ids::PACKET).unwrap().bytes(), &small[..]);
    }

    #[test]
    fn addresses_round_trip_and_negative_offsets_stay_in_their_region() {
        let a = address(ids::STACK0, 512);
        assert_eq!(split_address(a), (ids::STACK0, 512));
        assert_eq!(split_address(a.wrapping_sub(520)), (ids::STACK0, -8));
        assert_eq!(split_address(0), (ids::NULL, 0));
    }

    #[test]
    fn loads_and_stores_are_bounds_checked() {
        let mut m = Memory::new();
        let id = m.alloc(
            RegionKind::HelperBuffer { helper: 1 },
            vec![1, 2, 3, 4],
            true,
        );
        let a = address(id, 0);
        assert_eq!(m.load(a, 4).unwrap(), 0x04030201);
        assert_eq!(m.load(a + 2, 2).unwrap(), 0x0403);
        let err = m.load(a + 2, 4).unwrap_err();
        assert!(
            matches!(
                err,
                FaultKind::OutOfBounds {
                    offset: 2,
                    size: 4,
                    ..
                }
            ),
            "{err:?}"
        );
        let undo = m.store::<true>(a, 2, 0xbeef).unwrap().unwrap();
        assert_eq!(undo.old, 0x0201);
        assert_eq!(m.region(id).unwrap().bytes(), &[0xef, 0xbe, 3, 4]);
        m.restore_small(&undo);
        assert_eq!(m.region(id).unwrap().bytes(), &[1, 2, 3, 4]);
        assert!(matches!(m.load(0, 1), Err(FaultKind::NoRegion { .. })));
        assert!(matches!(
            m.load(u64::MAX, 1),
            Err(FaultKind::NoRegion { .. })
        ));
    }

    #[test]
    fn stores_of_every_size_write_exactly_their_bytes_little_endian() {
        let mut m = Memory::new();
        let id = m.alloc(RegionKind::HelperBuffer { helper: 1 }, vec![0xaa; 10], true);
        for size in [1usize, 2, 4, 8] {
            m.store::<false>(address(id, 1), size, 0x0807_0605_0403_0201)
                .unwrap();
            let mut want = [0xaa; 10];
            want[1..1 + size].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8][..size]);
            assert_eq!(m.region(id).unwrap().bytes(), &want[..], "size {size}");
            assert_eq!(
                m.load(address(id, 1), size).unwrap(),
                0x0807_0605_0403_0201 & (u64::MAX >> (64 - 8 * size))
            );
            m.store::<false>(address(id, 1), 8, 0xaaaa_aaaa_aaaa_aaaa)
                .unwrap();
        }
    }

    #[test]
    fn plain_loads_of_every_size_read_exactly_their_bytes_up_to_the_window_end() {
        // `load_plain_in` reads eight bytes and masks them when the buffer
        // holds eight from the offset, else the exact slice: both must give
        // the access's bytes only, and nothing past the accessible window.
        let mut m = Memory::new();
        let bytes: Vec<u8> = (1..=16).collect();
        let id = m.alloc(RegionKind::HelperBuffer { helper: 1 }, bytes.clone(), true);
        m.set_packet(&bytes, 2, 2, 12, false);
        for (region, start, end) in [(id, 0u64, 16u64), (ids::PACKET, 2, 12)] {
            for size in [1u64, 2, 4, 8] {
                for off in 0..=16u64 {
                    let got = load_plain_in(&m.regions, address(region, off), size as usize);
                    let want = (off >= start && off + size <= end).then(|| {
                        let mut a = [0u8; 8];
                        a[..size as usize]
                            .copy_from_slice(&bytes[off as usize..(off + size) as usize]);
                        u64::from_le_bytes(a)
                    });
                    assert_eq!(got, want, "region {region}, offset {off}, size {size}");
                }
            }
        }
    }

    #[test]
    fn read_only_and_freed_regions_fault() {
        let mut m = Memory::new();
        let ro = m.alloc(RegionKind::GlobalData { map: 2 }, vec![0; 8], false);
        assert!(matches!(
            m.store::<false>(address(ro, 0), 4, 1),
            Err(FaultKind::ReadOnly {
                offset: 0,
                size: 4,
                ..
            })
        ));
        assert_eq!(m.load(address(ro, 0), 8).unwrap(), 0);
        let v = m.alloc(
            RegionKind::MapValue {
                map: 1,
                key: vec![0],
            },
            vec![0; 8],
            true,
        );
        m.free(v);
        assert!(matches!(
            m.load(address(v, 0), 8),
            Err(FaultKind::Freed { .. })
        ));
    }
}
