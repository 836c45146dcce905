//! Map, program and attach types against the 6.18 kernel's enums, the uapi
//! header and bpftool's names.

mod catalog_common;

use bpfrr_trace::catalog::{AttachType, MapType, ProgType};

/// Checks one catalogue enum against `(constant, number)` pairs from the
/// kernel or the header. `_DEPRECATED` aliases share their number with the
/// current name.
fn check_against(
    source: &str,
    enumerators: &[(String, u32)],
    lookup: impl Fn(u32) -> Option<&'static str>,
) {
    assert!(!enumerators.is_empty(), "{source}: nothing to compare");
    for (constant, number) in enumerators {
        let ours =
            lookup(*number).unwrap_or_else(|| panic!("{source}: {constant} = {number} missing"));
        let constant = constant.strip_suffix("_DEPRECATED").unwrap_or(constant);
        assert_eq!(ours, constant, "{source}: number {number}");
    }
}

#[test]
fn counts_of_linux_6_18() {
    assert_eq!(MapType::ALL.len(), 34);
    assert_eq!(ProgType::ALL.len(), 33);
    assert_eq!(AttachType::ALL.len(), 58);
    assert_eq!(MapType::ALL.last(), Some(&MapType::Arena));
    assert_eq!(ProgType::ALL.last(), Some(&ProgType::Netfilter));
    assert_eq!(
        AttachType::ALL.last(),
        Some(&AttachType::TraceUprobeSession)
    );
}

#[test]
fn numbers_have_no_gaps_and_round_trip() {
    for (i, t) in MapType::ALL.iter().enumerate() {
        assert_eq!(t.number() as usize, i);
        assert_eq!(MapType::from_number(i as u32), Some(*t));
    }
    for (i, t) in ProgType::ALL.iter().enumerate() {
        assert_eq!(t.number() as usize, i);
        assert_eq!(ProgType::from_number(i as u32), Some(*t));
    }
    for (i, t) in AttachType::ALL.iter().enumerate() {
        assert_eq!(t.number() as usize, i);
        assert_eq!(AttachType::from_number(i as u32), Some(*t));
    }
    assert_eq!(MapType::from_number(34), None);
    assert_eq!(ProgType::from_number(33), None);
    assert_eq!(AttachType::from_number(58), None);
    assert_eq!(MapType::from_number(u32::MAX), None);
}

#[test]
fn names_round_trip_both_ways() {
    for t in MapType::ALL {
        assert_eq!(MapType::from_name(t.name()), Some(*t));
        assert_eq!(MapType::from_name(t.kernel_name()), Some(*t));
        assert_eq!(
            t.kernel_name(),
            format!("BPF_MAP_TYPE_{}", t.name().to_uppercase())
        );
        assert_eq!(t.to_string(), t.name());
    }
    for t in ProgType::ALL {
        assert_eq!(ProgType::from_name(t.name()), Some(*t));
        assert_eq!(ProgType::from_name(t.kernel_name()), Some(*t));
        assert_eq!(
            t.kernel_name(),
            format!("BPF_PROG_TYPE_{}", t.name().to_uppercase())
        );
    }
    for t in AttachType::ALL {
        assert_eq!(AttachType::from_name(t.name()), Some(*t));
        assert_eq!(AttachType::from_name(t.kernel_name()), Some(*t));
        assert_eq!(t.kernel_name(), format!("BPF_{}", t.name().to_uppercase()));
    }
    let unique = |names: Vec<&str>| {
        names.len() == names.iter().collect::<std::collections::HashSet<_>>().len()
    };
    assert!(unique(MapType::ALL.iter().map(|t| t.name()).collect()));
    assert!(unique(ProgType::ALL.iter().map(|t| t.name()).collect()));
    assert!(unique(AttachType::ALL.iter().map(|t| t.name()).collect()));
    assert_eq!(MapType::from_name("nosuch"), None);
    assert_eq!(ProgType::from_name("LPM_TRIE"), None);
}

#[test]
fn bpftool_names_of_common_types() {
    let maps = [
        (MapType::Hash, "hash", 1),
        (MapType::Array, "array", 2),
        (MapType::ProgArray, "prog_array", 3),
        (MapType::PerfEventArray, "perf_event_array", 4),
        (MapType::PercpuHash, "percpu_hash", 5),
        (MapType::PercpuArray, "percpu_array", 6),
        (MapType::LruHash, "lru_hash", 9),
        (MapType::LpmTrie, "lpm_trie", 11),
        (MapType::Ringbuf, "ringbuf", 27),
        (MapType::BloomFilter, "bloom_filter", 30),
        (MapType::UserRingbuf, "user_ringbuf", 31),
        (MapType::CgrpStorage, "cgrp_storage", 32),
        (MapType::Arena, "arena", 33),
    ];
    for (t, name, number) in maps {
        assert_eq!((t.name(), t.number()), (name, number));
    }
    let progs = [
        (ProgType::SocketFilter, "socket_filter", 1),
        (ProgType::Kprobe, "kprobe", 2),
        (ProgType::SchedCls, "sched_cls", 3),
        (ProgType::SchedAct, "sched_act", 4),
        (ProgType::Tracepoint, "tracepoint", 5),
        (ProgType::Xdp, "xdp", 6),
        (ProgType::PerfEvent, "perf_event", 7),
        (ProgType::CgroupSkb, "cgroup_skb", 8),
        (ProgType::RawTracepoint, "raw_tracepoint", 17),
        (ProgType::Tracing, "tracing", 26),
        (ProgType::Lsm, "lsm", 29),
        (ProgType::Netfilter, "netfilter", 32),
    ];
    for (t, name, number) in progs {
        assert_eq!((t.name(), t.number()), (name, number));
    }
    assert_eq!(AttachType::CgroupInetIngress.number(), 0);
    assert_eq!(AttachType::TraceFentry.name(), "trace_fentry");
    assert_eq!(AttachType::TcxIngress.number(), 46);
    assert_eq!(AttachType::from_name("xdp"), Some(AttachType::Xdp));
}

#[test]
fn per_cpu_map_types() {
    let per_cpu: Vec<MapType> = MapType::ALL
        .iter()
        .copied()
        .filter(|t| t.is_per_cpu())
        .collect();
    assert_eq!(
        per_cpu,
        [
            MapType::PercpuHash,
            MapType::PercpuArray,
            MapType::LruPercpuHash,
            MapType::PercpuCgroupStorage
        ]
    );
}

#[test]
fn unknown_numbers_say_what_is_wrong() {
    let err = MapType::try_from_number(99).unwrap_err();
    assert_eq!(err.number, 99);
    let text = err.to_string();
    assert!(text.contains("unknown map type 99"), "{text}");
    assert!(text.contains("newer kernel"), "{text}");
    assert!(
        ProgType::try_from_number(40)
            .unwrap_err()
            .to_string()
            .contains("program type 40")
    );
    assert!(
        AttachType::try_from_number(58)
            .unwrap_err()
            .to_string()
            .contains("attach type 58")
    );
    assert_eq!(ProgType::try_from_number(6), Ok(ProgType::Xdp));
}

#[test]
fn types_match_the_6_18_kernel_btf() {
    let kernel = catalog_common::kernel_enums();
    let maps = &kernel["bpf_map_type"];
    let progs = &kernel["bpf_prog_type"];
    let attach = &kernel["bpf_attach_type"];
    check_against("kernel map types", maps, |n| {
        MapType::from_number(n).map(MapType::kernel_name)
    });
    check_against("kernel prog types", progs, |n| {
        ProgType::from_number(n).map(ProgType::kernel_name)
    });
    check_against("kernel attach types", attach, |n| {
        AttachType::from_number(n).map(AttachType::kernel_name)
    });
    // And nothing of ours is missing from the kernel.
    let numbers = |e: &Vec<(String, u32)>| {
        e.iter()
            .map(|(_, n)| *n)
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(numbers(maps).len(), MapType::ALL.len());
    assert_eq!(numbers(progs).len(), ProgType::ALL.len());
    assert_eq!(numbers(attach).len(), AttachType::ALL.len());
}

#[test]
fn types_match_the_installed_uapi_header() {
    let header = |name| catalog_common::header_enum(name);
    check_against("header map types", &header("bpf_map_type"), |n| {
        MapType::from_number(n).map(MapType::kernel_name)
    });
    check_against("header prog types", &header("bpf_prog_type"), |n| {
        ProgType::from_number(n).map(ProgType::kernel_name)
    });
    check_against("header attach types", &header("bpf_attach_type"), |n| {
        AttachType::from_number(n).map(AttachType::kernel_name)
    });
}
