//! The helper catalogue: every id of Linux 6.18's `enum bpf_func_id`, with
//! the verifier's view of each helper's arguments and return value.
//!
//! The table itself lives in [`super::helper_table`]; this module holds the
//! vocabulary ([`ArgKind`], [`RetKind`]) and the questions others ask of a
//! helper: what is it called, which arguments does it write through and how
//! many bytes, does it return a pointer, does it change packet data.
//!
//! Argument kinds describe what the helper *does*. The kernel's flags agree
//! with that for almost every helper; where 6.18's prototype still lacks the
//! `MEM_WRITE` flag on a buffer the helper fills (`bpf_fib_lookup`,
//! `bpf_snprintf`, `bpf_d_path`, ... — fixed upstream after 6.18) the table
//! records the write, because the recorder must capture those bytes.

use super::helper_table::HELPERS;

/// Size of `struct bpf_dynptr` (two u64), written by helpers that
/// initialise a dynptr on the program's stack.
pub const DYNPTR_SIZE: u32 = 16;

/// Highest helper id of Linux 6.18 (`BPF_FUNC_cgrp_storage_delete`); no
/// helper has been added since 6.2, new functionality comes as kfuncs.
pub const MAX_HELPER_ID: u32 = 211;

/// How the verifier checks one argument register of a helper call (the
/// kernel's `enum bpf_arg_type` plus its flags, folded into one kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArgKind {
    /// `ARG_ANYTHING`: any initialised scalar (flags, offsets, ids).
    Anything,
    /// `ARG_CONST_MAP_PTR`: a map loaded with `ld_imm64`.
    ConstMapPtr,
    /// `ARG_PTR_TO_MAP_KEY`: `key_size` readable bytes.
    MapKey,
    /// `ARG_PTR_TO_MAP_VALUE`: `value_size` readable bytes.
    MapValue,
    /// `ARG_PTR_TO_MAP_VALUE_OR_NULL`: a readable value or NULL.
    MapValueOrNull,
    /// `ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE`: the helper writes
    /// `value_size` bytes (`bpf_map_pop_elem`, `bpf_map_peek_elem`).
    UninitMapValue,
    /// `ARG_PTR_TO_MEM | MEM_RDONLY`: read-only memory, size in the next
    /// argument.
    Mem,
    /// `ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY`.
    MemOrNull,
    /// `ARG_PTR_TO_UNINIT_MEM` (`MEM_UNINIT | MEM_WRITE`): the helper fills
    /// the buffer (zeroing it on error); size in the next argument.
    UninitMem,
    /// `ARG_PTR_TO_MEM | MEM_WRITE`: initialised memory the helper reads
    /// and writes (`bpf_fib_lookup` params); size in the next argument.
    WritableMem,
    /// `ARG_PTR_TO_MEM_OR_NULL | MEM_WRITE`: a buffer the helper fills, or
    /// NULL (`bpf_snprintf`); size in the next argument.
    WritableMemOrNull,
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_RDONLY`: read-only, size fixed by
    /// the prototype.
    FixedSizeMem(u32),
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE`: a fixed-size
    /// result slot (`bpf_strtol`'s `res`, `bpf_get_func_arg`'s `value`).
    UninitFixedSizeMem(u32),
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE`: fixed-size in/out
    /// (`bpf_check_mtu`'s `mtu_len`).
    WritableFixedSizeMem(u32),
    /// `ARG_CONST_SIZE`: size (> 0) of the memory argument before it.
    ConstSize,
    /// `ARG_CONST_SIZE_OR_ZERO`: size (>= 0) of the memory argument before it.
    ConstSizeOrZero,
    /// `ARG_CONST_ALLOC_SIZE_OR_ZERO`: size of memory the helper returns.
    ConstAllocSizeOrZero,
    /// `ARG_PTR_TO_CTX`: the program's context.
    Ctx,
    /// `ARG_PTR_TO_CTX_OR_NULL`.
    CtxOrNull,
    /// `ARG_PTR_TO_FUNC`: a callback subprogram (`ld_imm64` pseudo func).
    Func,
    /// `ARG_PTR_TO_STACK`: a pointer into the program's stack.
    Stack,
    /// `ARG_PTR_TO_STACK_OR_NULL`: callback context on the stack, or NULL.
    StackOrNull,
    /// `ARG_PTR_TO_CONST_STR`: a NUL-terminated string in a read-only map.
    ConstStr,
    /// `ARG_PTR_TO_BTF_ID`: a typed kernel object (task, file, ...).
    BtfId,
    /// `ARG_PTR_TO_BTF_ID_OR_NULL`.
    BtfIdOrNull,
    /// `ARG_PTR_TO_BTF_ID_SOCK_COMMON`: any socket-like kernel object.
    BtfIdSockCommon,
    /// `ARG_PTR_TO_PERCPU_BTF_ID`: a per-CPU kernel variable.
    PercpuBtfId,
    /// `ARG_PTR_TO_SOCK_COMMON`: a socket from the context or a lookup.
    SockCommon,
    /// `ARG_PTR_TO_SOCKET`: a full socket.
    Socket,
    /// `ARG_PTR_TO_SOCKET_OR_NULL`.
    SocketOrNull,
    /// `ARG_PTR_TO_SPIN_LOCK`: the `bpf_spin_lock` field of a map value.
    SpinLock,
    /// `ARG_PTR_TO_TIMER`: the `bpf_timer` field of a map value.
    Timer,
    /// `ARG_KPTR_XCHG_DEST`: a kptr field of a map value; the helper stores
    /// a new kernel pointer there.
    KptrXchgDest,
    /// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`: a record from
    /// `bpf_ringbuf_reserve`.
    RingbufMem,
    /// `ARG_PTR_TO_DYNPTR`: an initialised dynptr.
    Dynptr,
    /// `ARG_PTR_TO_DYNPTR | MEM_UNINIT | MEM_WRITE`: a dynptr on the stack
    /// that the helper initialises ([`DYNPTR_SIZE`] bytes).
    UninitDynptr,
}

impl ArgKind {
    /// The kernel's spelling of this kind, as in a `bpf_func_proto`.
    pub fn kernel_name(self) -> &'static str {
        use ArgKind::*;
        match self {
            Anything => "ARG_ANYTHING",
            ConstMapPtr => "ARG_CONST_MAP_PTR",
            MapKey => "ARG_PTR_TO_MAP_KEY",
            MapValue => "ARG_PTR_TO_MAP_VALUE",
            MapValueOrNull => "ARG_PTR_TO_MAP_VALUE_OR_NULL",
            UninitMapValue => "ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE",
            Mem => "ARG_PTR_TO_MEM | MEM_RDONLY",
            MemOrNull => "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY",
            UninitMem => "ARG_PTR_TO_UNINIT_MEM",
            WritableMem => "ARG_PTR_TO_MEM | MEM_WRITE",
            WritableMemOrNull => "ARG_PTR_TO_MEM_OR_NULL | MEM_WRITE",
            FixedSizeMem(_) => "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_RDONLY",
            UninitFixedSizeMem(_) => "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE",
            WritableFixedSizeMem(_) => "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE",
            ConstSize => "ARG_CONST_SIZE",
            ConstSizeOrZero => "ARG_CONST_SIZE_OR_ZERO",
            ConstAllocSizeOrZero => "ARG_CONST_ALLOC_SIZE_OR_ZERO",
            Ctx => "ARG_PTR_TO_CTX",
            CtxOrNull => "ARG_PTR_TO_CTX_OR_NULL",
            Func => "ARG_PTR_TO_FUNC",
            Stack => "ARG_PTR_TO_STACK",
            StackOrNull => "ARG_PTR_TO_STACK_OR_NULL",
            ConstStr => "ARG_PTR_TO_CONST_STR",
            BtfId => "ARG_PTR_TO_BTF_ID",
            BtfIdOrNull => "ARG_PTR_TO_BTF_ID_OR_NULL",
            BtfIdSockCommon => "ARG_PTR_TO_BTF_ID_SOCK_COMMON",
            PercpuBtfId => "ARG_PTR_TO_PERCPU_BTF_ID",
            SockCommon => "ARG_PTR_TO_SOCK_COMMON",
            Socket => "ARG_PTR_TO_SOCKET",
            SocketOrNull => "ARG_PTR_TO_SOCKET_OR_NULL",
            SpinLock => "ARG_PTR_TO_SPIN_LOCK",
            Timer => "ARG_PTR_TO_TIMER",
            KptrXchgDest => "ARG_KPTR_XCHG_DEST",
            RingbufMem => "ARG_PTR_TO_RINGBUF_MEM",
            Dynptr => "ARG_PTR_TO_DYNPTR",
            UninitDynptr => "ARG_PTR_TO_DYNPTR | MEM_UNINIT | MEM_WRITE",
        }
    }

    /// Whether the register holds a pointer (as opposed to a scalar, a size
    /// or a map reference).
    pub fn is_pointer(self) -> bool {
        !matches!(
            self,
            ArgKind::Anything
                | ArgKind::ConstMapPtr
                | ArgKind::ConstSize
                | ArgKind::ConstSizeOrZero
                | ArgKind::ConstAllocSizeOrZero
        )
    }

    /// Whether this is a size argument that belongs to the memory argument
    /// just before it.
    pub fn is_mem_size(self) -> bool {
        matches!(self, ArgKind::ConstSize | ArgKind::ConstSizeOrZero)
    }

    /// Whether the memory's size is given by the next argument.
    pub fn is_sized_by_next_arg(self) -> bool {
        matches!(
            self,
            ArgKind::Mem
                | ArgKind::MemOrNull
                | ArgKind::UninitMem
                | ArgKind::WritableMem
                | ArgKind::WritableMemOrNull
        )
    }

    /// Whether the helper writes memory through this argument.
    pub fn is_output(self) -> bool {
        matches!(
            self,
            ArgKind::UninitMapValue
                | ArgKind::UninitMem
                | ArgKind::WritableMem
                | ArgKind::WritableMemOrNull
                | ArgKind::UninitFixedSizeMem(_)
                | ArgKind::WritableFixedSizeMem(_)
                | ArgKind::UninitDynptr
                | ArgKind::KptrXchgDest
        )
    }
}

/// What a helper leaves in r0 (the kernel's `enum bpf_return_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetKind {
    /// `RET_INTEGER`: a scalar.
    Integer,
    /// `RET_VOID`: nothing; r0 is unreadable after the call.
    Void,
    /// `RET_PTR_TO_MAP_VALUE`: a map value, never NULL.
    MapValue,
    /// `RET_PTR_TO_MAP_VALUE_OR_NULL`.
    MapValueOrNull,
    /// `RET_PTR_TO_SOCKET_OR_NULL`.
    SocketOrNull,
    /// `RET_PTR_TO_TCP_SOCK_OR_NULL`.
    TcpSockOrNull,
    /// `RET_PTR_TO_SOCK_COMMON_OR_NULL`.
    SockCommonOrNull,
    /// `RET_PTR_TO_RINGBUF_MEM_OR_NULL`: a ring buffer record whose size is
    /// the helper's `ARG_CONST_ALLOC_SIZE_OR_ZERO` argument.
    RingbufMemOrNull,
    /// `RET_PTR_TO_DYNPTR_MEM_OR_NULL`: memory behind a dynptr, size from
    /// the `ARG_CONST_ALLOC_SIZE_OR_ZERO` argument.
    DynptrMemOrNull,
    /// `RET_PTR_TO_MEM_OR_BTF_ID | MEM_RDONLY`: a per-CPU variable.
    MemOrBtfId,
    /// `RET_PTR_TO_MEM_OR_BTF_ID | PTR_MAYBE_NULL | MEM_RDONLY`.
    MemOrBtfIdOrNull,
    /// `RET_PTR_TO_BTF_ID`: a typed kernel object.
    BtfId,
    /// `RET_PTR_TO_BTF_ID_OR_NULL`.
    BtfIdOrNull,
    /// `RET_PTR_TO_BTF_ID_TRUSTED`.
    BtfIdTrusted,
}

impl RetKind {
    /// The kernel's spelling of this kind.
    pub fn kernel_name(self) -> &'static str {
        match self {
            RetKind::Integer => "RET_INTEGER",
            RetKind::Void => "RET_VOID",
            RetKind::MapValue => "RET_PTR_TO_MAP_VALUE",
            RetKind::MapValueOrNull => "RET_PTR_TO_MAP_VALUE_OR_NULL",
            RetKind::SocketOrNull => "RET_PTR_TO_SOCKET_OR_NULL",
            RetKind::TcpSockOrNull => "RET_PTR_TO_TCP_SOCK_OR_NULL",
            RetKind::SockCommonOrNull => "RET_PTR_TO_SOCK_COMMON_OR_NULL",
            RetKind::RingbufMemOrNull => "RET_PTR_TO_RINGBUF_MEM_OR_NULL",
            RetKind::DynptrMemOrNull => "RET_PTR_TO_DYNPTR_MEM_OR_NULL",
            RetKind::MemOrBtfId => "RET_PTR_TO_MEM_OR_BTF_ID | MEM_RDONLY",
            RetKind::MemOrBtfIdOrNull => "RET_PTR_TO_MEM_OR_BTF_ID | PTR_MAYBE_NULL | MEM_RDONLY",
            RetKind::BtfId => "RET_PTR_TO_BTF_ID",
            RetKind::BtfIdOrNull => "RET_PTR_TO_BTF_ID_OR_NULL",
            RetKind::BtfIdTrusted => "RET_PTR_TO_BTF_ID_TRUSTED",
        }
    }

    /// Whether r0 holds a pointer after the call.
    pub fn is_pointer(self) -> bool {
        !matches!(self, RetKind::Integer | RetKind::Void)
    }

    /// Whether the pointer may be NULL (the program must check it).
    pub fn may_be_null(self) -> bool {
        matches!(
            self,
            RetKind::MapValueOrNull
                | RetKind::SocketOrNull
                | RetKind::TcpSockOrNull
                | RetKind::SockCommonOrNull
                | RetKind::RingbufMemOrNull
                | RetKind::DynptrMemOrNull
                | RetKind::MemOrBtfIdOrNull
                | RetKind::BtfIdOrNull
        )
    }
}

/// Where the number of bytes a helper writes (or returns) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutSize {
    /// The value of argument register `r(n + 1)` at the call.
    Arg(u8),
    /// A size fixed by the helper's prototype.
    Fixed(u32),
    /// The `value_size` of the map passed in the helper's map argument.
    MapValue,
    /// The `key_size` of the map passed in the helper's map argument.
    MapKey,
}

/// One argument through which a helper writes memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutputArg {
    /// 0-based argument index: 0 is r1.
    pub arg: u8,
    /// How many bytes the helper may write there.
    pub size: OutSize,
}

/// One helper of `enum bpf_func_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelperSpec {
    /// The helper id (the `imm` of `call`).
    pub id: u32,
    /// Its C name, `bpf_map_lookup_elem`.
    pub name: &'static str,
    /// Argument kinds, r1 first; the helper takes `args.len()` arguments.
    pub args: &'static [ArgKind],
    /// What r0 holds after the call.
    pub ret: RetKind,
}

impl HelperSpec {
    /// The name without the `bpf_` prefix, as in `BPF_FUNC_<short_name>`.
    pub fn short_name(&self) -> &'static str {
        self.name.strip_prefix("bpf_").unwrap_or(self.name)
    }

    /// Arguments (0-based, r1 = 0) through which the helper writes memory,
    /// with where their size comes from. The recorder captures these bytes
    /// after each call; the replayer writes them back.
    pub fn output_args(&self) -> Vec<OutputArg> {
        let mut out = Vec::new();
        for (i, kind) in self.args.iter().enumerate() {
            let size = match *kind {
                ArgKind::UninitMapValue => OutSize::MapValue,
                ArgKind::UninitMem | ArgKind::WritableMem | ArgKind::WritableMemOrNull => {
                    // The verifier pairs a sized buffer with the next argument.
                    OutSize::Arg(i as u8 + 1)
                }
                ArgKind::UninitFixedSizeMem(n) | ArgKind::WritableFixedSizeMem(n) => {
                    OutSize::Fixed(n)
                }
                ArgKind::UninitDynptr => OutSize::Fixed(DYNPTR_SIZE),
                ArgKind::KptrXchgDest => OutSize::Fixed(8),
                _ => continue,
            };
            out.push(OutputArg { arg: i as u8, size });
        }
        out
    }

    /// Whether r0 holds a pointer after the call.
    pub fn returns_pointer(&self) -> bool {
        self.ret.is_pointer()
    }

    /// The memory the returned pointer refers to, when the program may read
    /// it as plain bytes and its size is known: a map value for
    /// `bpf_map_lookup_elem` and the local-storage getters, the reserved
    /// record for `bpf_ringbuf_reserve`, the slice for `bpf_dynptr_data`.
    /// Sockets and other kernel objects are `None`.
    pub fn returned_memory(&self) -> Option<OutSize> {
        match self.ret {
            RetKind::MapValue | RetKind::MapValueOrNull => Some(OutSize::MapValue),
            RetKind::RingbufMemOrNull | RetKind::DynptrMemOrNull => self
                .args
                .iter()
                .position(|a| *a == ArgKind::ConstAllocSizeOrZero)
                .map(|i| OutSize::Arg(i as u8)),
            _ => None,
        }
    }

    /// Whether the helper may move or resize packet data, invalidating
    /// every packet pointer the program holds (the kernel's
    /// `bpf_helper_changes_pkt_data`).
    pub fn changes_packet_data(&self) -> bool {
        PACKET_CHANGING.contains(&self.short_name())
    }
}

/// Helpers the kernel lists in `bpf_helper_changes_pkt_data`.
const PACKET_CHANGING: &[&str] = &[
    "skb_vlan_push",
    "skb_vlan_pop",
    "skb_store_bytes",
    "skb_change_proto",
    "skb_change_head",
    "skb_change_tail",
    "skb_adjust_room",
    "skb_pull_data",
    "clone_redirect",
    "l3_csum_replace",
    "l4_csum_replace",
    "xdp_adjust_head",
    "xdp_adjust_meta",
    "xdp_adjust_tail",
    "msg_pull_data",
    "msg_push_data",
    "msg_pop_data",
    "lwt_push_encap",
    "lwt_seg6_store_bytes",
    "lwt_seg6_adjust_srh",
    "lwt_seg6_action",
    "store_hdr_opt",
];

/// Every helper, indexed by id (`helpers()[id].id == id`).
pub fn helpers() -> &'static [HelperSpec] {
    &HELPERS
}

/// The helper with this id, or `None` for an id 6.18 does not know.
pub fn helper(id: i32) -> Option<&'static HelperSpec> {
    usize::try_from(id).ok().and_then(|i| HELPERS.get(i))
}

/// The C name of the helper with this id (`bpf_map_lookup_elem`).
pub fn helper_name(id: i32) -> Option<&'static str> {
    helper(id).map(|h| h.name)
}

/// The helper called `name`, with or without the `bpf_` prefix.
pub fn helper_by_name(name: &str) -> Option<&'static HelperSpec> {
    let short = name.strip_prefix("bpf_").unwrap_or(name);
    HELPERS.iter().find(|h| h.short_name() == short)
}
