//! The helper catalogue against the 6.18 kernel's enum, the uapi header,
//! and the argument facts the recorder depends on.

mod catalog_common;

use bpfrr_trace::catalog::helpers::{DYNPTR_SIZE, MAX_HELPER_ID};
use bpfrr_trace::catalog::{
    ArgKind, OutSize, OutputArg, RetKind, helper, helper_by_name, helper_name, helpers,
};

fn spec(name: &str) -> &'static bpfrr_trace::catalog::HelperSpec {
    helper_by_name(name).unwrap_or_else(|| panic!("{name} is not in the catalogue"))
}

fn out(arg: u8, size: OutSize) -> OutputArg {
    OutputArg { arg, size }
}

#[test]
fn every_id_from_0_to_211_is_present_without_gaps() {
    assert_eq!(helpers().len(), 212);
    assert_eq!(MAX_HELPER_ID, 211);
    for (index, h) in helpers().iter().enumerate() {
        assert_eq!(h.id as usize, index, "{} is at index {index}", h.name);
        assert!(h.name.starts_with("bpf_"), "{}", h.name);
        assert!(
            h.args.len() <= 5,
            "{} takes {} arguments",
            h.name,
            h.args.len()
        );
    }
    assert!(helper(-1).is_none());
    assert!(helper(212).is_none());
    assert!(helper(i32::MAX).is_none());
    assert_eq!(helper(211).unwrap().name, "bpf_cgrp_storage_delete");
}

#[test]
fn names_round_trip_with_and_without_prefix() {
    let mut seen = std::collections::HashSet::new();
    for h in helpers() {
        assert!(seen.insert(h.name), "duplicate name {}", h.name);
        assert_eq!(helper_name(h.id as i32), Some(h.name));
        assert_eq!(helper_by_name(h.name).map(|s| s.id), Some(h.id));
        assert_eq!(helper_by_name(h.short_name()).map(|s| s.id), Some(h.id));
    }
    assert_eq!(helper_by_name("map_lookup_elem").unwrap().id, 1);
    assert_eq!(helper_by_name("bpf_map_lookup_elem").unwrap().id, 1);
    assert!(helper_by_name("bpf_no_such_helper").is_none());
    assert!(helper_by_name("").is_none());
}

#[test]
fn ids_and_names_match_the_6_18_kernel_btf() {
    let kernel = catalog_common::kernel_enums();
    let func_ids = &kernel["bpf_func_id"];
    assert_eq!(
        func_ids.len(),
        helpers().len(),
        "the kernel has 212 helper ids"
    );
    for (constant, number) in func_ids {
        let short = constant
            .strip_prefix("BPF_FUNC_")
            .expect("BPF_FUNC_ prefix");
        let h = helper(*number as i32).unwrap_or_else(|| panic!("{constant} = {number} missing"));
        assert_eq!(h.short_name(), short, "id {number}");
    }
}

#[test]
fn ids_and_names_match_the_installed_uapi_header() {
    let from_header = catalog_common::header_helpers();
    // Debian 12's header stops at 209 (user_ringbuf_drain); newer ones at 211.
    assert!(
        from_header.len() >= 210,
        "only {} helpers in the header",
        from_header.len()
    );
    for (name, id) in &from_header {
        assert_eq!(
            helper_name(*id as i32),
            Some(format!("bpf_{name}").as_str()),
            "id {id}"
        );
    }
}

#[test]
fn every_memory_argument_is_paired_with_its_size() {
    for h in helpers() {
        for (i, kind) in h.args.iter().enumerate() {
            if kind.is_sized_by_next_arg() {
                let next = h.args.get(i + 1);
                assert!(
                    next.is_some_and(|k| k.is_mem_size()),
                    "{} arg {i} ({}) is not followed by a size",
                    h.name,
                    kind.kernel_name()
                );
            }
            if kind.is_mem_size() {
                assert!(
                    i > 0 && h.args[i - 1].is_sized_by_next_arg(),
                    "{} arg {i} is a size with no buffer before it",
                    h.name
                );
            }
            if *kind == ArgKind::ConstAllocSizeOrZero {
                assert!(
                    h.returned_memory().is_some(),
                    "{} sizes nothing it returns",
                    h.name
                );
            }
            if *kind == ArgKind::UninitMapValue {
                assert!(h.args.contains(&ArgKind::ConstMapPtr), "{}", h.name);
            }
        }
        for o in h.output_args() {
            assert!(h.args[o.arg as usize].is_output());
            if let OutSize::Arg(n) = o.size {
                assert!(h.args[n as usize].is_mem_size(), "{}: size arg {n}", h.name);
            }
        }
        assert_eq!(h.returns_pointer(), h.ret.is_pointer());
    }
}

#[test]
fn output_arguments_of_the_helpers_the_recorder_captures() {
    let cases: &[(&str, &[OutputArg])] = &[
        ("probe_read", &[out(0, OutSize::Arg(1))]),
        ("probe_read_str", &[out(0, OutSize::Arg(1))]),
        ("probe_read_user", &[out(0, OutSize::Arg(1))]),
        ("probe_read_kernel", &[out(0, OutSize::Arg(1))]),
        ("probe_read_user_str", &[out(0, OutSize::Arg(1))]),
        ("probe_read_kernel_str", &[out(0, OutSize::Arg(1))]),
        ("copy_from_user", &[out(0, OutSize::Arg(1))]),
        ("copy_from_user_task", &[out(0, OutSize::Arg(1))]),
        ("get_current_comm", &[out(0, OutSize::Arg(1))]),
        ("skb_load_bytes", &[out(2, OutSize::Arg(3))]),
        ("skb_load_bytes_relative", &[out(2, OutSize::Arg(3))]),
        ("xdp_load_bytes", &[out(2, OutSize::Arg(3))]),
        ("fib_lookup", &[out(1, OutSize::Arg(2))]),
        ("perf_event_read_value", &[out(2, OutSize::Arg(3))]),
        ("perf_prog_read_value", &[out(1, OutSize::Arg(2))]),
        ("get_stack", &[out(1, OutSize::Arg(2))]),
        ("get_task_stack", &[out(1, OutSize::Arg(2))]),
        ("get_ns_current_pid_tgid", &[out(2, OutSize::Arg(3))]),
        ("getsockopt", &[out(3, OutSize::Arg(4))]),
        ("skb_get_tunnel_key", &[out(1, OutSize::Arg(2))]),
        ("skb_get_tunnel_opt", &[out(1, OutSize::Arg(2))]),
        ("skb_get_xfrm_state", &[out(2, OutSize::Arg(3))]),
        ("sysctl_get_name", &[out(1, OutSize::Arg(2))]),
        ("sysctl_get_current_value", &[out(1, OutSize::Arg(2))]),
        ("snprintf", &[out(0, OutSize::Arg(1))]),
        ("snprintf_btf", &[out(0, OutSize::Arg(1))]),
        ("d_path", &[out(1, OutSize::Arg(2))]),
        ("read_branch_records", &[out(1, OutSize::Arg(2))]),
        ("get_branch_snapshot", &[out(0, OutSize::Arg(1))]),
        ("ima_inode_hash", &[out(1, OutSize::Arg(2))]),
        ("load_hdr_opt", &[out(1, OutSize::Arg(2))]),
        ("strtol", &[out(3, OutSize::Fixed(8))]),
        ("strtoul", &[out(3, OutSize::Fixed(8))]),
        ("kallsyms_lookup_name", &[out(3, OutSize::Fixed(8))]),
        ("get_func_arg", &[out(2, OutSize::Fixed(8))]),
        ("get_func_ret", &[out(1, OutSize::Fixed(8))]),
        ("check_mtu", &[out(2, OutSize::Fixed(4))]),
        ("map_pop_elem", &[out(1, OutSize::MapValue)]),
        ("map_peek_elem", &[out(1, OutSize::MapValue)]),
        ("dynptr_read", &[out(0, OutSize::Arg(1))]),
        (
            "dynptr_from_mem",
            &[out(0, OutSize::Arg(1)), out(3, OutSize::Fixed(DYNPTR_SIZE))],
        ),
        (
            "ringbuf_reserve_dynptr",
            &[out(3, OutSize::Fixed(DYNPTR_SIZE))],
        ),
        ("kptr_xchg", &[out(0, OutSize::Fixed(8))]),
    ];
    for (name, expected) in cases {
        assert_eq!(spec(name).output_args(), *expected, "output args of {name}");
    }
}

#[test]
fn helpers_that_only_read_memory_have_no_output_arguments() {
    for name in [
        "map_lookup_elem",
        "map_update_elem",
        "map_delete_elem",
        "map_push_elem",
        "perf_event_output",
        "ringbuf_output",
        "skb_store_bytes",
        "xdp_store_bytes",
        "trace_printk",
        "csum_diff",
        "sk_lookup_tcp",
        "probe_write_user",
        "strncmp",
        "dynptr_write",
        "tcp_raw_check_syncookie_ipv4",
        "ktime_get_ns",
        "tail_call",
        "loop",
    ] {
        assert!(spec(name).output_args().is_empty(), "{name} writes nothing");
    }
}

#[test]
fn return_kinds_and_returned_memory() {
    let lookup = spec("map_lookup_elem");
    assert_eq!(lookup.args, &[ArgKind::ConstMapPtr, ArgKind::MapKey]);
    assert_eq!(lookup.ret, RetKind::MapValueOrNull);
    assert!(lookup.returns_pointer() && lookup.ret.may_be_null());
    assert_eq!(lookup.returned_memory(), Some(OutSize::MapValue));

    assert_eq!(
        spec("map_lookup_percpu_elem").returned_memory(),
        Some(OutSize::MapValue)
    );
    let storage = spec("get_local_storage");
    assert_eq!(storage.ret, RetKind::MapValue);
    assert!(!storage.ret.may_be_null());
    for name in [
        "sk_storage_get",
        "task_storage_get",
        "inode_storage_get",
        "cgrp_storage_get",
    ] {
        assert_eq!(
            spec(name).returned_memory(),
            Some(OutSize::MapValue),
            "{name}"
        );
    }

    let reserve = spec("ringbuf_reserve");
    assert_eq!(reserve.ret, RetKind::RingbufMemOrNull);
    assert_eq!(reserve.returned_memory(), Some(OutSize::Arg(1)));
    assert_eq!(spec("dynptr_data").returned_memory(), Some(OutSize::Arg(2)));

    assert_eq!(spec("sk_lookup_tcp").ret, RetKind::SocketOrNull);
    assert_eq!(spec("skc_lookup_tcp").ret, RetKind::SockCommonOrNull);
    assert_eq!(spec("tcp_sock").ret, RetKind::TcpSockOrNull);
    assert_eq!(spec("skc_to_tcp_sock").ret, RetKind::BtfIdOrNull);
    assert_eq!(spec("get_current_task_btf").ret, RetKind::BtfIdTrusted);
    assert_eq!(spec("task_pt_regs").ret, RetKind::BtfId);
    assert_eq!(spec("this_cpu_ptr").ret, RetKind::MemOrBtfId);
    assert_eq!(spec("per_cpu_ptr").ret, RetKind::MemOrBtfIdOrNull);
    for name in [
        "sk_lookup_tcp",
        "skc_to_tcp_sock",
        "get_current_task_btf",
        "per_cpu_ptr",
    ] {
        let h = spec(name);
        assert!(h.returns_pointer(), "{name}");
        assert_eq!(h.returned_memory(), None, "{name} returns a kernel object");
    }

    for name in [
        "tail_call",
        "spin_lock",
        "spin_unlock",
        "ringbuf_submit",
        "ringbuf_discard",
        "set_hash_invalid",
    ] {
        assert_eq!(spec(name).ret, RetKind::Void, "{name}");
        assert!(!spec(name).returns_pointer());
    }
    for name in [
        "ktime_get_ns",
        "get_current_pid_tgid",
        "get_current_task",
        "redirect",
        "loop",
    ] {
        assert_eq!(spec(name).ret, RetKind::Integer, "{name}");
    }
    // Exactly these ids return pointers (read off the kernel's protos).
    let pointers: Vec<u32> = helpers()
        .iter()
        .filter(|h| h.returns_pointer())
        .map(|h| h.id)
        .collect();
    assert_eq!(
        pointers,
        [
            1, 81, 84, 85, 95, 96, 98, 99, 107, 131, 136, 137, 138, 139, 140, 145, 153, 154, 156,
            158, 162, 175, 178, 194, 195, 196, 203, 210
        ]
    );
}

#[test]
fn argument_lists_of_common_helpers() {
    use ArgKind::*;
    assert_eq!(
        spec("map_update_elem").args,
        &[ConstMapPtr, MapKey, MapValue, Anything]
    );
    assert_eq!(
        spec("probe_read_kernel").args,
        &[UninitMem, ConstSizeOrZero, Anything]
    );
    assert_eq!(spec("get_current_comm").args, &[UninitMem, ConstSize]);
    assert_eq!(
        spec("perf_event_output").args,
        &[Ctx, ConstMapPtr, Anything, Mem, ConstSizeOrZero]
    );
    assert_eq!(
        spec("ringbuf_output").args,
        &[ConstMapPtr, Mem, ConstSizeOrZero, Anything]
    );
    assert_eq!(
        spec("ringbuf_reserve").args,
        &[ConstMapPtr, ConstAllocSizeOrZero, Anything]
    );
    assert_eq!(spec("tail_call").args, &[Ctx, ConstMapPtr, Anything]);
    assert_eq!(
        spec("redirect_map").args,
        &[ConstMapPtr, Anything, Anything]
    );
    assert_eq!(
        spec("fib_lookup").args,
        &[Ctx, WritableMem, ConstSize, Anything]
    );
    assert_eq!(
        spec("skb_store_bytes").args,
        &[Ctx, Anything, Mem, ConstSize, Anything]
    );
    assert_eq!(spec("l3_csum_replace").args.len(), 5);
    assert_eq!(spec("loop").args, &[Anything, Func, StackOrNull, Anything]);
    assert_eq!(
        spec("for_each_map_elem").args,
        &[ConstMapPtr, Func, StackOrNull, Anything]
    );
    assert_eq!(spec("timer_set_callback").args, &[Timer, Func]);
    assert_eq!(spec("spin_lock").args, &[SpinLock]);
    assert_eq!(spec("snprintf").args[2], ConstStr);
    assert_eq!(
        spec("tcp_raw_check_syncookie_ipv6").args,
        &[FixedSizeMem(40), FixedSizeMem(20)]
    );
    assert!(spec("ktime_get_ns").args.is_empty());
    assert_eq!(spec("unspec").id, 0);
}

#[test]
fn packet_changing_helpers() {
    for name in [
        "skb_store_bytes",
        "l3_csum_replace",
        "l4_csum_replace",
        "skb_pull_data",
        "skb_adjust_room",
        "skb_change_tail",
        "xdp_adjust_head",
        "xdp_adjust_tail",
        "xdp_adjust_meta",
        "msg_push_data",
        "clone_redirect",
    ] {
        assert!(
            spec(name).changes_packet_data(),
            "{name} changes packet data"
        );
    }
    for name in [
        "skb_load_bytes",
        "xdp_store_bytes",
        "map_lookup_elem",
        "redirect",
        "fib_lookup",
    ] {
        assert!(
            !spec(name).changes_packet_data(),
            "{name} keeps packet pointers valid"
        );
    }
    assert_eq!(
        helpers().iter().filter(|h| h.changes_packet_data()).count(),
        22
    );
}

#[test]
fn kernel_names_of_kinds() {
    assert_eq!(ArgKind::UninitMem.kernel_name(), "ARG_PTR_TO_UNINIT_MEM");
    assert_eq!(ArgKind::ConstMapPtr.kernel_name(), "ARG_CONST_MAP_PTR");
    assert_eq!(
        ArgKind::FixedSizeMem(20).kernel_name(),
        "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_RDONLY"
    );
    assert_eq!(
        RetKind::MapValueOrNull.kernel_name(),
        "RET_PTR_TO_MAP_VALUE_OR_NULL"
    );
    assert!(!ArgKind::Anything.is_pointer() && ArgKind::Ctx.is_pointer());
    assert!(ArgKind::UninitMem.is_output() && !ArgKind::Mem.is_output());
}
