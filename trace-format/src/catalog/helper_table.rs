//! The table of Linux 6.18's helpers, `BPF_FUNC_unspec` (0) to
//! `BPF_FUNC_cgrp_storage_delete` (211), transcribed from the kernel's
//! `struct bpf_func_proto` definitions (kernel/bpf/helpers.c,
//! kernel/trace/bpf_trace.c, net/core/filter.c, kernel/bpf/ringbuf.c,
//! kernel/bpf/stackmap.c, kernel/bpf/cgroup.c, kernel/bpf/bpf_lsm.c,
//! kernel/bpf/*_storage.c, net/core/sock_map.c, ...).
//!
//! A helper with several prototypes (one per program type) is listed with
//! the most common one; the variants are noted beside it. Ids and names are
//! checked by tests against the uapi header and a dump of the 6.18 kernel's
//! BTF (tests/data/linux-6.18-enums.txt).

use super::helpers::{ArgKind as A, HelperSpec, RetKind as R};

macro_rules! h {
    ($id:literal, $name:literal, [$($arg:expr),* $(,)?], $ret:expr) => {
        HelperSpec { id: $id, name: concat!("bpf_", $name), args: &[$($arg),*], ret: $ret }
    };
}

const IPHDR: u32 = 20; // sizeof(struct iphdr)
const IPV6HDR: u32 = 40; // sizeof(struct ipv6hdr)
const TCPHDR: u32 = 20; // sizeof(struct tcphdr)

pub(super) static HELPERS: [HelperSpec; 212] = [
    // Not callable: the verifier rejects id 0.
    h!(0, "unspec", [], R::Integer),
    h!(
        1,
        "map_lookup_elem",
        [A::ConstMapPtr, A::MapKey],
        R::MapValueOrNull
    ),
    h!(
        2,
        "map_update_elem",
        [A::ConstMapPtr, A::MapKey, A::MapValue, A::Anything],
        R::Integer
    ),
    h!(
        3,
        "map_delete_elem",
        [A::ConstMapPtr, A::MapKey],
        R::Integer
    ),
    h!(
        4,
        "probe_read",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(5, "ktime_get_ns", [], R::Integer),
    h!(6, "trace_printk", [A::Mem, A::ConstSize], R::Integer),
    h!(7, "get_prandom_u32", [], R::Integer),
    h!(8, "get_smp_processor_id", [], R::Integer),
    h!(
        9,
        "skb_store_bytes",
        [A::Ctx, A::Anything, A::Mem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        10,
        "l3_csum_replace",
        [A::Ctx, A::Anything, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        11,
        "l4_csum_replace",
        [A::Ctx, A::Anything, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    // Does not return on success: control moves to the target program.
    h!(
        12,
        "tail_call",
        [A::Ctx, A::ConstMapPtr, A::Anything],
        R::Void
    ),
    h!(
        13,
        "clone_redirect",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(14, "get_current_pid_tgid", [], R::Integer),
    h!(15, "get_current_uid_gid", [], R::Integer),
    h!(
        16,
        "get_current_comm",
        [A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(17, "get_cgroup_classid", [A::Ctx], R::Integer),
    h!(
        18,
        "skb_vlan_push",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(19, "skb_vlan_pop", [A::Ctx], R::Integer),
    h!(
        20,
        "skb_get_tunnel_key",
        [A::Ctx, A::UninitMem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        21,
        "skb_set_tunnel_key",
        [A::Ctx, A::Mem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        22,
        "perf_event_read",
        [A::ConstMapPtr, A::Anything],
        R::Integer
    ),
    h!(23, "redirect", [A::Anything, A::Anything], R::Integer),
    h!(24, "get_route_realm", [A::Ctx], R::Integer),
    // Same kinds for kprobe, tracepoint, raw_tp, skb and xdp variants.
    h!(
        25,
        "perf_event_output",
        [
            A::Ctx,
            A::ConstMapPtr,
            A::Anything,
            A::Mem,
            A::ConstSizeOrZero
        ],
        R::Integer
    ),
    // sk_reuseport and flow_dissector variants have the same kinds.
    h!(
        26,
        "skb_load_bytes",
        [A::Ctx, A::Anything, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        27,
        "get_stackid",
        [A::Ctx, A::ConstMapPtr, A::Anything],
        R::Integer
    ),
    h!(
        28,
        "csum_diff",
        [
            A::MemOrNull,
            A::ConstSizeOrZero,
            A::MemOrNull,
            A::ConstSizeOrZero,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        29,
        "skb_get_tunnel_opt",
        [A::Ctx, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        30,
        "skb_set_tunnel_opt",
        [A::Ctx, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        31,
        "skb_change_proto",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(32, "skb_change_type", [A::Ctx, A::Anything], R::Integer),
    h!(
        33,
        "skb_under_cgroup",
        [A::Ctx, A::ConstMapPtr, A::Anything],
        R::Integer
    ),
    h!(34, "get_hash_recalc", [A::Ctx], R::Integer),
    h!(35, "get_current_task", [], R::Integer),
    h!(
        36,
        "probe_write_user",
        [A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        37,
        "current_task_under_cgroup",
        [A::ConstMapPtr, A::Anything],
        R::Integer
    ),
    h!(
        38,
        "skb_change_tail",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(39, "skb_pull_data", [A::Ctx, A::Anything], R::Integer),
    h!(40, "csum_update", [A::Ctx, A::Anything], R::Integer),
    h!(41, "set_hash_invalid", [A::Ctx], R::Void),
    h!(42, "get_numa_node_id", [], R::Integer),
    h!(
        43,
        "skb_change_head",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(44, "xdp_adjust_head", [A::Ctx, A::Anything], R::Integer),
    h!(
        45,
        "probe_read_str",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    // Tracing programs take a socket (ARG_PTR_TO_BTF_ID_SOCK_COMMON) instead.
    h!(46, "get_socket_cookie", [A::Ctx], R::Integer),
    h!(47, "get_socket_uid", [A::Ctx], R::Integer),
    h!(48, "set_hash", [A::Ctx, A::Anything], R::Integer),
    // sock_ops / sock_addr / sockopt take the context; LSM and tracing
    // programs take ARG_PTR_TO_BTF_ID_SOCK_COMMON. Same memory arguments.
    h!(
        49,
        "setsockopt",
        [A::Ctx, A::Anything, A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        50,
        "skb_adjust_room",
        [A::Ctx, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    // XDP's variant; tc's bpf_redirect_map does not exist (sk_* use 52).
    h!(
        51,
        "redirect_map",
        [A::ConstMapPtr, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        52,
        "sk_redirect_map",
        [A::Ctx, A::ConstMapPtr, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        53,
        "sock_map_update",
        [A::Ctx, A::ConstMapPtr, A::MapKey, A::Anything],
        R::Integer
    ),
    h!(54, "xdp_adjust_meta", [A::Ctx, A::Anything], R::Integer),
    h!(
        55,
        "perf_event_read_value",
        [A::ConstMapPtr, A::Anything, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        56,
        "perf_prog_read_value",
        [A::Ctx, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        57,
        "getsockopt",
        [A::Ctx, A::Anything, A::Anything, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(58, "override_return", [A::Ctx, A::Anything], R::Integer),
    h!(
        59,
        "sock_ops_cb_flags_set",
        [A::Ctx, A::Anything],
        R::Integer
    ),
    h!(
        60,
        "msg_redirect_map",
        [A::Ctx, A::ConstMapPtr, A::Anything, A::Anything],
        R::Integer
    ),
    h!(61, "msg_apply_bytes", [A::Ctx, A::Anything], R::Integer),
    h!(62, "msg_cork_bytes", [A::Ctx, A::Anything], R::Integer),
    h!(
        63,
        "msg_pull_data",
        [A::Ctx, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    h!(64, "bind", [A::Ctx, A::Mem, A::ConstSize], R::Integer),
    h!(65, "xdp_adjust_tail", [A::Ctx, A::Anything], R::Integer),
    h!(
        66,
        "skb_get_xfrm_state",
        [A::Ctx, A::Anything, A::UninitMem, A::ConstSize, A::Anything],
        R::Integer
    ),
    // Same kinds for tracepoint, perf_event and raw_tp variants (the raw_tp
    // one was wrongly MEM_RDONLY in 6.18; the helper writes the buffer).
    h!(
        67,
        "get_stack",
        [A::Ctx, A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(
        68,
        "skb_load_bytes_relative",
        [A::Ctx, A::Anything, A::UninitMem, A::ConstSize, A::Anything],
        R::Integer
    ),
    // struct bpf_fib_lookup is read and written (6.18's proto lacks MEM_WRITE).
    h!(
        69,
        "fib_lookup",
        [A::Ctx, A::WritableMem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        70,
        "sock_hash_update",
        [A::Ctx, A::ConstMapPtr, A::MapKey, A::Anything],
        R::Integer
    ),
    h!(
        71,
        "msg_redirect_hash",
        [A::Ctx, A::ConstMapPtr, A::MapKey, A::Anything],
        R::Integer
    ),
    h!(
        72,
        "sk_redirect_hash",
        [A::Ctx, A::ConstMapPtr, A::MapKey, A::Anything],
        R::Integer
    ),
    h!(
        73,
        "lwt_push_encap",
        [A::Ctx, A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        74,
        "lwt_seg6_store_bytes",
        [A::Ctx, A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        75,
        "lwt_seg6_adjust_srh",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        76,
        "lwt_seg6_action",
        [A::Ctx, A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(77, "rc_repeat", [A::Ctx], R::Integer),
    h!(
        78,
        "rc_keydown",
        [A::Ctx, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    h!(79, "skb_cgroup_id", [A::Ctx], R::Integer),
    h!(80, "get_current_cgroup_id", [], R::Integer),
    h!(
        81,
        "get_local_storage",
        [A::ConstMapPtr, A::Anything],
        R::MapValue
    ),
    h!(
        82,
        "sk_select_reuseport",
        [A::Ctx, A::ConstMapPtr, A::MapKey, A::Anything],
        R::Integer
    ),
    h!(
        83,
        "skb_ancestor_cgroup_id",
        [A::Ctx, A::Anything],
        R::Integer
    ),
    h!(
        84,
        "sk_lookup_tcp",
        [A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything],
        R::SocketOrNull
    ),
    h!(
        85,
        "sk_lookup_udp",
        [A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything],
        R::SocketOrNull
    ),
    // ARG_PTR_TO_BTF_ID_SOCK_COMMON | OBJ_RELEASE.
    h!(86, "sk_release", [A::BtfIdSockCommon], R::Integer),
    h!(
        87,
        "map_push_elem",
        [A::ConstMapPtr, A::MapValue, A::Anything],
        R::Integer
    ),
    h!(
        88,
        "map_pop_elem",
        [A::ConstMapPtr, A::UninitMapValue],
        R::Integer
    ),
    h!(
        89,
        "map_peek_elem",
        [A::ConstMapPtr, A::UninitMapValue],
        R::Integer
    ),
    h!(
        90,
        "msg_push_data",
        [A::Ctx, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        91,
        "msg_pop_data",
        [A::Ctx, A::Anything, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        92,
        "rc_pointer_rel",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(93, "spin_lock", [A::SpinLock], R::Void),
    h!(94, "spin_unlock", [A::SpinLock], R::Void),
    h!(95, "sk_fullsock", [A::SockCommon], R::SocketOrNull),
    h!(96, "tcp_sock", [A::SockCommon], R::TcpSockOrNull),
    h!(97, "skb_ecn_set_ce", [A::Ctx], R::Integer),
    h!(98, "get_listener_sock", [A::SockCommon], R::SocketOrNull),
    h!(
        99,
        "skc_lookup_tcp",
        [A::Ctx, A::Mem, A::ConstSize, A::Anything, A::Anything],
        R::SockCommonOrNull
    ),
    h!(
        100,
        "tcp_check_syncookie",
        [
            A::BtfIdSockCommon,
            A::Mem,
            A::ConstSize,
            A::Mem,
            A::ConstSize
        ],
        R::Integer
    ),
    // Writes the sysctl name into buf (6.18's proto lacks MEM_WRITE).
    h!(
        101,
        "sysctl_get_name",
        [A::Ctx, A::WritableMem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        102,
        "sysctl_get_current_value",
        [A::Ctx, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        103,
        "sysctl_get_new_value",
        [A::Ctx, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        104,
        "sysctl_set_new_value",
        [A::Ctx, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        105,
        "strtol",
        [A::Mem, A::ConstSize, A::Anything, A::UninitFixedSizeMem(8)],
        R::Integer
    ),
    h!(
        106,
        "strtoul",
        [A::Mem, A::ConstSize, A::Anything, A::UninitFixedSizeMem(8)],
        R::Integer
    ),
    // Tracing programs use a variant with the same kinds.
    h!(
        107,
        "sk_storage_get",
        [
            A::ConstMapPtr,
            A::BtfIdSockCommon,
            A::MapValueOrNull,
            A::Anything
        ],
        R::MapValueOrNull
    ),
    h!(
        108,
        "sk_storage_delete",
        [A::ConstMapPtr, A::BtfIdSockCommon],
        R::Integer
    ),
    h!(109, "send_signal", [A::Anything], R::Integer),
    h!(
        110,
        "tcp_gen_syncookie",
        [
            A::BtfIdSockCommon,
            A::Mem,
            A::ConstSize,
            A::Mem,
            A::ConstSize
        ],
        R::Integer
    ),
    h!(
        111,
        "skb_output",
        [
            A::BtfId,
            A::ConstMapPtr,
            A::Anything,
            A::Mem,
            A::ConstSizeOrZero
        ],
        R::Integer
    ),
    h!(
        112,
        "probe_read_user",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(
        113,
        "probe_read_kernel",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(
        114,
        "probe_read_user_str",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(
        115,
        "probe_read_kernel_str",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(116, "tcp_send_ack", [A::BtfId, A::Anything], R::Integer),
    h!(117, "send_signal_thread", [A::Anything], R::Integer),
    h!(118, "jiffies64", [], R::Integer),
    // Fills buf unless it is NULL (6.18's proto lacks MEM_WRITE).
    h!(
        119,
        "read_branch_records",
        [
            A::Ctx,
            A::WritableMemOrNull,
            A::ConstSizeOrZero,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        120,
        "get_ns_current_pid_tgid",
        [A::Anything, A::Anything, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        121,
        "xdp_output",
        [
            A::BtfId,
            A::ConstMapPtr,
            A::Anything,
            A::Mem,
            A::ConstSizeOrZero
        ],
        R::Integer
    ),
    // Socket programs pass the context; sock_addr/sockopt also allow NULL.
    h!(122, "get_netns_cookie", [A::CtxOrNull], R::Integer),
    h!(
        123,
        "get_current_ancestor_cgroup_id",
        [A::Anything],
        R::Integer
    ),
    // tc's variant; sk_lookup programs pass ARG_PTR_TO_SOCKET_OR_NULL.
    h!(
        124,
        "sk_assign",
        [A::Ctx, A::BtfIdSockCommon, A::Anything],
        R::Integer
    ),
    h!(125, "ktime_get_boot_ns", [], R::Integer),
    h!(
        126,
        "seq_printf",
        [
            A::BtfId,
            A::Mem,
            A::ConstSize,
            A::MemOrNull,
            A::ConstSizeOrZero
        ],
        R::Integer
    ),
    h!(
        127,
        "seq_write",
        [A::BtfId, A::Mem, A::ConstSizeOrZero],
        R::Integer
    ),
    h!(128, "sk_cgroup_id", [A::BtfIdSockCommon], R::Integer),
    h!(
        129,
        "sk_ancestor_cgroup_id",
        [A::BtfIdSockCommon, A::Anything],
        R::Integer
    ),
    h!(
        130,
        "ringbuf_output",
        [A::ConstMapPtr, A::Mem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(
        131,
        "ringbuf_reserve",
        [A::ConstMapPtr, A::ConstAllocSizeOrZero, A::Anything],
        R::RingbufMemOrNull
    ),
    h!(132, "ringbuf_submit", [A::RingbufMem, A::Anything], R::Void),
    h!(
        133,
        "ringbuf_discard",
        [A::RingbufMem, A::Anything],
        R::Void
    ),
    h!(
        134,
        "ringbuf_query",
        [A::ConstMapPtr, A::Anything],
        R::Integer
    ),
    h!(135, "csum_level", [A::Ctx, A::Anything], R::Integer),
    h!(
        136,
        "skc_to_tcp6_sock",
        [A::BtfIdSockCommon],
        R::BtfIdOrNull
    ),
    h!(137, "skc_to_tcp_sock", [A::BtfIdSockCommon], R::BtfIdOrNull),
    h!(
        138,
        "skc_to_tcp_timewait_sock",
        [A::BtfIdSockCommon],
        R::BtfIdOrNull
    ),
    h!(
        139,
        "skc_to_tcp_request_sock",
        [A::BtfIdSockCommon],
        R::BtfIdOrNull
    ),
    h!(
        140,
        "skc_to_udp6_sock",
        [A::BtfIdSockCommon],
        R::BtfIdOrNull
    ),
    h!(
        141,
        "get_task_stack",
        [A::BtfId, A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    // searchby_res is read (the option kind to find) and written (the option).
    h!(
        142,
        "load_hdr_opt",
        [A::Ctx, A::WritableMem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        143,
        "store_hdr_opt",
        [A::Ctx, A::Mem, A::ConstSize, A::Anything],
        R::Integer
    ),
    h!(
        144,
        "reserve_hdr_opt",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        145,
        "inode_storage_get",
        [
            A::ConstMapPtr,
            A::BtfIdOrNull,
            A::MapValueOrNull,
            A::Anything
        ],
        R::MapValueOrNull
    ),
    h!(
        146,
        "inode_storage_delete",
        [A::ConstMapPtr, A::BtfIdOrNull],
        R::Integer
    ),
    // Writes the path into buf (6.18's proto lacks MEM_WRITE).
    h!(
        147,
        "d_path",
        [A::BtfId, A::WritableMem, A::ConstSizeOrZero],
        R::Integer
    ),
    h!(
        148,
        "copy_from_user",
        [A::UninitMem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    // Writes the text into str (6.18's proto lacks MEM_WRITE).
    h!(
        149,
        "snprintf_btf",
        [
            A::WritableMem,
            A::ConstSize,
            A::Mem,
            A::ConstSize,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        150,
        "seq_printf_btf",
        [A::BtfId, A::Mem, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(151, "skb_cgroup_classid", [A::Ctx], R::Integer),
    h!(
        152,
        "redirect_neigh",
        [A::Anything, A::MemOrNull, A::ConstSizeOrZero, A::Anything],
        R::Integer
    ),
    h!(
        153,
        "per_cpu_ptr",
        [A::PercpuBtfId, A::Anything],
        R::MemOrBtfIdOrNull
    ),
    h!(154, "this_cpu_ptr", [A::PercpuBtfId], R::MemOrBtfId),
    h!(155, "redirect_peer", [A::Anything, A::Anything], R::Integer),
    h!(
        156,
        "task_storage_get",
        [
            A::ConstMapPtr,
            A::BtfIdOrNull,
            A::MapValueOrNull,
            A::Anything
        ],
        R::MapValueOrNull
    ),
    h!(
        157,
        "task_storage_delete",
        [A::ConstMapPtr, A::BtfIdOrNull],
        R::Integer
    ),
    h!(158, "get_current_task_btf", [], R::BtfIdTrusted),
    h!(159, "bprm_opts_set", [A::BtfId, A::Anything], R::Integer),
    h!(160, "ktime_get_coarse_ns", [], R::Integer),
    h!(
        161,
        "ima_inode_hash",
        [A::BtfId, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(162, "sock_from_file", [A::BtfId], R::BtfIdOrNull),
    // mtu_len is read (ignored unless len_diff is 0) and written.
    h!(
        163,
        "check_mtu",
        [
            A::Ctx,
            A::Anything,
            A::WritableFixedSizeMem(4),
            A::Anything,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        164,
        "for_each_map_elem",
        [A::ConstMapPtr, A::Func, A::StackOrNull, A::Anything],
        R::Integer
    ),
    // Writes the formatted text into str unless it is NULL (6.18's proto
    // lacks MEM_WRITE).
    h!(
        165,
        "snprintf",
        [
            A::WritableMemOrNull,
            A::ConstSizeOrZero,
            A::ConstStr,
            A::MemOrNull,
            A::ConstSizeOrZero
        ],
        R::Integer
    ),
    h!(
        166,
        "sys_bpf",
        [A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        167,
        "btf_find_by_name_kind",
        [A::Mem, A::ConstSize, A::Anything, A::Anything],
        R::Integer
    ),
    h!(168, "sys_close", [A::Anything], R::Integer),
    h!(
        169,
        "timer_init",
        [A::Timer, A::ConstMapPtr, A::Anything],
        R::Integer
    ),
    h!(170, "timer_set_callback", [A::Timer, A::Func], R::Integer),
    h!(
        171,
        "timer_start",
        [A::Timer, A::Anything, A::Anything],
        R::Integer
    ),
    h!(172, "timer_cancel", [A::Timer], R::Integer),
    h!(173, "get_func_ip", [A::Ctx], R::Integer),
    h!(174, "get_attach_cookie", [A::Ctx], R::Integer),
    h!(175, "task_pt_regs", [A::BtfId], R::BtfId),
    // The flags argument (r3) is not declared in the proto, so not checked.
    h!(
        176,
        "get_branch_snapshot",
        [A::UninitMem, A::ConstSizeOrZero],
        R::Integer
    ),
    h!(
        177,
        "trace_vprintk",
        [A::Mem, A::ConstSize, A::MemOrNull, A::ConstSizeOrZero],
        R::Integer
    ),
    h!(
        178,
        "skc_to_unix_sock",
        [A::BtfIdSockCommon],
        R::BtfIdOrNull
    ),
    h!(
        179,
        "kallsyms_lookup_name",
        [
            A::Mem,
            A::ConstSizeOrZero,
            A::Anything,
            A::UninitFixedSizeMem(8)
        ],
        R::Integer
    ),
    h!(
        180,
        "find_vma",
        [A::BtfId, A::Anything, A::Func, A::StackOrNull, A::Anything],
        R::Integer
    ),
    h!(
        181,
        "loop",
        [A::Anything, A::Func, A::StackOrNull, A::Anything],
        R::Integer
    ),
    h!(
        182,
        "strncmp",
        [A::Mem, A::ConstSize, A::ConstStr],
        R::Integer
    ),
    h!(
        183,
        "get_func_arg",
        [A::Ctx, A::Anything, A::UninitFixedSizeMem(8)],
        R::Integer
    ),
    h!(
        184,
        "get_func_ret",
        [A::Ctx, A::UninitFixedSizeMem(8)],
        R::Integer
    ),
    h!(185, "get_func_arg_cnt", [A::Ctx], R::Integer),
    h!(186, "get_retval", [], R::Integer),
    h!(187, "set_retval", [A::Anything], R::Integer),
    // Tracing programs pass a struct xdp_buff (ARG_PTR_TO_BTF_ID).
    h!(188, "xdp_get_buff_len", [A::Ctx], R::Integer),
    h!(
        189,
        "xdp_load_bytes",
        [A::Ctx, A::Anything, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        190,
        "xdp_store_bytes",
        [A::Ctx, A::Anything, A::Mem, A::ConstSize],
        R::Integer
    ),
    h!(
        191,
        "copy_from_user_task",
        [
            A::UninitMem,
            A::ConstSizeOrZero,
            A::Anything,
            A::BtfId,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        192,
        "skb_set_tstamp",
        [A::Ctx, A::Anything, A::Anything],
        R::Integer
    ),
    h!(
        193,
        "ima_file_hash",
        [A::BtfId, A::UninitMem, A::ConstSize],
        R::Integer
    ),
    h!(
        194,
        "kptr_xchg",
        [A::KptrXchgDest, A::BtfIdOrNull],
        R::BtfIdOrNull
    ),
    h!(
        195,
        "map_lookup_percpu_elem",
        [A::ConstMapPtr, A::MapKey, A::Anything],
        R::MapValueOrNull
    ),
    h!(196, "skc_to_mptcp_sock", [A::SockCommon], R::BtfIdOrNull),
    h!(
        197,
        "dynptr_from_mem",
        [
            A::UninitMem,
            A::ConstSizeOrZero,
            A::Anything,
            A::UninitDynptr
        ],
        R::Integer
    ),
    h!(
        198,
        "ringbuf_reserve_dynptr",
        [A::ConstMapPtr, A::Anything, A::Anything, A::UninitDynptr],
        R::Integer
    ),
    h!(
        199,
        "ringbuf_submit_dynptr",
        [A::Dynptr, A::Anything],
        R::Void
    ),
    h!(
        200,
        "ringbuf_discard_dynptr",
        [A::Dynptr, A::Anything],
        R::Void
    ),
    h!(
        201,
        "dynptr_read",
        [
            A::UninitMem,
            A::ConstSizeOrZero,
            A::Dynptr,
            A::Anything,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        202,
        "dynptr_write",
        [
            A::Dynptr,
            A::Anything,
            A::Mem,
            A::ConstSizeOrZero,
            A::Anything
        ],
        R::Integer
    ),
    h!(
        203,
        "dynptr_data",
        [A::Dynptr, A::Anything, A::ConstAllocSizeOrZero],
        R::DynptrMemOrNull
    ),
    h!(
        204,
        "tcp_raw_gen_syncookie_ipv4",
        [A::FixedSizeMem(IPHDR), A::Mem, A::ConstSizeOrZero],
        R::Integer
    ),
    h!(
        205,
        "tcp_raw_gen_syncookie_ipv6",
        [A::FixedSizeMem(IPV6HDR), A::Mem, A::ConstSizeOrZero],
        R::Integer
    ),
    h!(
        206,
        "tcp_raw_check_syncookie_ipv4",
        [A::FixedSizeMem(IPHDR), A::FixedSizeMem(TCPHDR)],
        R::Integer
    ),
    h!(
        207,
        "tcp_raw_check_syncookie_ipv6",
        [A::FixedSizeMem(IPV6HDR), A::FixedSizeMem(TCPHDR)],
        R::Integer
    ),
    h!(208, "ktime_get_tai_ns", [], R::Integer),
    h!(
        209,
        "user_ringbuf_drain",
        [A::ConstMapPtr, A::Func, A::StackOrNull, A::Anything],
        R::Integer
    ),
    h!(
        210,
        "cgrp_storage_get",
        [
            A::ConstMapPtr,
            A::BtfIdOrNull,
            A::MapValueOrNull,
            A::Anything
        ],
        R::MapValueOrNull
    ),
    h!(
        211,
        "cgrp_storage_delete",
        [A::ConstMapPtr, A::BtfIdOrNull],
        R::Integer
    ),
];
