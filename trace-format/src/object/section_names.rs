//! Program section names to program type, expected attach type and attach
//! point, following libbpf's `section_defs` table (tools/lib/bpf/libbpf.c).
//!
//! An entry is either exact (`"xdp"`), or a prefix that must be followed by
//! `/` and the attach point (`"tracepoint/"`), or a prefix that may stand
//! alone or take `/...` (libbpf's `+` suffix, e.g. `"kprobe+"`).

use crate::catalog::{AttachType, ProgType};

/// How an entry matches a section name.
#[derive(Clone, Copy)]
enum Match {
    /// The whole name.
    Exact,
    /// The name, or the name followed by `/` and an attach point.
    Plus,
}

struct SectionDef {
    name: &'static str,
    how: Match,
    prog_type: ProgType,
    attach: Option<AttachType>,
}

const fn def(
    name: &'static str,
    how: Match,
    prog_type: ProgType,
    attach: Option<AttachType>,
) -> SectionDef {
    SectionDef {
        name,
        how,
        prog_type,
        attach,
    }
}

use AttachType as A;
use Match::{Exact, Plus};
use ProgType as P;

/// In libbpf's order: the first match wins, so longer names come first.
const SECTION_DEFS: &[SectionDef] = &[
    def("socket", Plus, P::SocketFilter, None),
    def(
        "sk_reuseport/migrate",
        Exact,
        P::SkReuseport,
        Some(A::SkReuseportSelectOrMigrate),
    ),
    def(
        "sk_reuseport",
        Exact,
        P::SkReuseport,
        Some(A::SkReuseportSelect),
    ),
    def("kprobe", Plus, P::Kprobe, None),
    def("uprobe", Plus, P::Kprobe, None),
    def("uprobe.s", Plus, P::Kprobe, None),
    def("kretprobe", Plus, P::Kprobe, None),
    def("uretprobe", Plus, P::Kprobe, None),
    def("uretprobe.s", Plus, P::Kprobe, None),
    def("kprobe.multi", Plus, P::Kprobe, Some(A::TraceKprobeMulti)),
    def(
        "kretprobe.multi",
        Plus,
        P::Kprobe,
        Some(A::TraceKprobeMulti),
    ),
    def(
        "kprobe.session",
        Plus,
        P::Kprobe,
        Some(A::TraceKprobeSession),
    ),
    def("uprobe.multi", Plus, P::Kprobe, Some(A::TraceUprobeMulti)),
    def(
        "uretprobe.multi",
        Plus,
        P::Kprobe,
        Some(A::TraceUprobeMulti),
    ),
    def("uprobe.multi.s", Plus, P::Kprobe, Some(A::TraceUprobeMulti)),
    def(
        "uretprobe.multi.s",
        Plus,
        P::Kprobe,
        Some(A::TraceUprobeMulti),
    ),
    def(
        "uprobe.session",
        Plus,
        P::Kprobe,
        Some(A::TraceUprobeSession),
    ),
    def(
        "uprobe.session.s",
        Plus,
        P::Kprobe,
        Some(A::TraceUprobeSession),
    ),
    def("ksyscall", Plus, P::Kprobe, None),
    def("kretsyscall", Plus, P::Kprobe, None),
    def("usdt", Plus, P::Kprobe, None),
    def("usdt.s", Plus, P::Kprobe, None),
    def("tc/ingress", Exact, P::SchedCls, Some(A::TcxIngress)),
    def("tc/egress", Exact, P::SchedCls, Some(A::TcxEgress)),
    def("tcx/ingress", Exact, P::SchedCls, Some(A::TcxIngress)),
    def("tcx/egress", Exact, P::SchedCls, Some(A::TcxEgress)),
    def("tc", Plus, P::SchedCls, None),
    def("classifier", Plus, P::SchedCls, None),
    def("action", Plus, P::SchedAct, None),
    def("netkit/primary", Exact, P::SchedCls, Some(A::NetkitPrimary)),
    def("netkit/peer", Exact, P::SchedCls, Some(A::NetkitPeer)),
    def("tracepoint", Plus, P::Tracepoint, None),
    def("tp", Plus, P::Tracepoint, None),
    def("raw_tracepoint", Plus, P::RawTracepoint, None),
    def("raw_tp", Plus, P::RawTracepoint, None),
    def("raw_tracepoint.w", Plus, P::RawTracepointWritable, None),
    def("raw_tp.w", Plus, P::RawTracepointWritable, None),
    def("tp_btf", Plus, P::Tracing, Some(A::TraceRawTp)),
    def("fentry", Plus, P::Tracing, Some(A::TraceFentry)),
    def("fmod_ret", Plus, P::Tracing, Some(A::ModifyReturn)),
    def("fexit", Plus, P::Tracing, Some(A::TraceFexit)),
    def("fentry.s", Plus, P::Tracing, Some(A::TraceFentry)),
    def("fmod_ret.s", Plus, P::Tracing, Some(A::ModifyReturn)),
    def("fexit.s", Plus, P::Tracing, Some(A::TraceFexit)),
    def("freplace", Plus, P::Ext, None),
    def("lsm", Plus, P::Lsm, Some(A::LsmMac)),
    def("lsm.s", Plus, P::Lsm, Some(A::LsmMac)),
    def("lsm_cgroup", Plus, P::Lsm, Some(A::LsmCgroup)),
    def("iter", Plus, P::Tracing, Some(A::TraceIter)),
    def("iter.s", Plus, P::Tracing, Some(A::TraceIter)),
    def("syscall", Exact, P::Syscall, None),
    def("xdp.frags/devmap", Exact, P::Xdp, Some(A::XdpDevmap)),
    def("xdp/devmap", Exact, P::Xdp, Some(A::XdpDevmap)),
    def("xdp.frags/cpumap", Exact, P::Xdp, Some(A::XdpCpumap)),
    def("xdp/cpumap", Exact, P::Xdp, Some(A::XdpCpumap)),
    def("xdp.frags", Exact, P::Xdp, Some(A::Xdp)),
    def("xdp", Plus, P::Xdp, Some(A::Xdp)),
    def("perf_event", Exact, P::PerfEvent, None),
    def("lwt_in", Exact, P::LwtIn, None),
    def("lwt_out", Exact, P::LwtOut, None),
    def("lwt_xmit", Exact, P::LwtXmit, None),
    def("lwt_seg6local", Exact, P::LwtSeg6local, None),
    def("sockops", Exact, P::SockOps, Some(A::CgroupSockOps)),
    def(
        "sk_skb/stream_parser",
        Exact,
        P::SkSkb,
        Some(A::SkSkbStreamParser),
    ),
    def(
        "sk_skb/stream_verdict",
        Exact,
        P::SkSkb,
        Some(A::SkSkbStreamVerdict),
    ),
    def("sk_skb/verdict", Exact, P::SkSkb, Some(A::SkSkbVerdict)),
    def("sk_skb", Plus, P::SkSkb, None),
    def("sk_msg", Exact, P::SkMsg, Some(A::SkMsgVerdict)),
    def("lirc_mode2", Exact, P::LircMode2, Some(A::LircMode2)),
    def(
        "flow_dissector",
        Exact,
        P::FlowDissector,
        Some(A::FlowDissector),
    ),
    def(
        "cgroup_skb/ingress",
        Exact,
        P::CgroupSkb,
        Some(A::CgroupInetIngress),
    ),
    def(
        "cgroup_skb/egress",
        Exact,
        P::CgroupSkb,
        Some(A::CgroupInetEgress),
    ),
    def("cgroup/skb", Exact, P::CgroupSkb, None),
    def(
        "cgroup/sock_create",
        Exact,
        P::CgroupSock,
        Some(A::CgroupInetSockCreate),
    ),
    def(
        "cgroup/sock_release",
        Exact,
        P::CgroupSock,
        Some(A::CgroupInetSockRelease),
    ),
    def(
        "cgroup/sock",
        Exact,
        P::CgroupSock,
        Some(A::CgroupInetSockCreate),
    ),
    def(
        "cgroup/post_bind4",
        Exact,
        P::CgroupSock,
        Some(A::CgroupInet4PostBind),
    ),
    def(
        "cgroup/post_bind6",
        Exact,
        P::CgroupSock,
        Some(A::CgroupInet6PostBind),
    ),
    def(
        "cgroup/bind4",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet4Bind),
    ),
    def(
        "cgroup/bind6",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet6Bind),
    ),
    def(
        "cgroup/connect4",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet4Connect),
    ),
    def(
        "cgroup/connect6",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet6Connect),
    ),
    def(
        "cgroup/connect_unix",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUnixConnect),
    ),
    def(
        "cgroup/sendmsg4",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUdp4Sendmsg),
    ),
    def(
        "cgroup/sendmsg6",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUdp6Sendmsg),
    ),
    def(
        "cgroup/sendmsg_unix",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUnixSendmsg),
    ),
    def(
        "cgroup/recvmsg4",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUdp4Recvmsg),
    ),
    def(
        "cgroup/recvmsg6",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUdp6Recvmsg),
    ),
    def(
        "cgroup/recvmsg_unix",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUnixRecvmsg),
    ),
    def(
        "cgroup/getpeername4",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet4Getpeername),
    ),
    def(
        "cgroup/getpeername6",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet6Getpeername),
    ),
    def(
        "cgroup/getpeername_unix",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUnixGetpeername),
    ),
    def(
        "cgroup/getsockname4",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet4Getsockname),
    ),
    def(
        "cgroup/getsockname6",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupInet6Getsockname),
    ),
    def(
        "cgroup/getsockname_unix",
        Exact,
        P::CgroupSockAddr,
        Some(A::CgroupUnixGetsockname),
    ),
    def(
        "cgroup/sysctl",
        Exact,
        P::CgroupSysctl,
        Some(A::CgroupSysctl),
    ),
    def(
        "cgroup/getsockopt",
        Exact,
        P::CgroupSockopt,
        Some(A::CgroupGetsockopt),
    ),
    def(
        "cgroup/setsockopt",
        Exact,
        P::CgroupSockopt,
        Some(A::CgroupSetsockopt),
    ),
    def("cgroup/dev", Exact, P::CgroupDevice, Some(A::CgroupDevice)),
    def("struct_ops", Plus, P::StructOps, None),
    def("struct_ops.s", Plus, P::StructOps, None),
    def("sk_lookup", Exact, P::SkLookup, Some(A::SkLookup)),
    def("netfilter", Exact, P::Netfilter, Some(A::Netfilter)),
];

/// What a program's section name says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SectionMeaning {
    pub prog_type: ProgType,
    pub expected_attach_type: Option<AttachType>,
    /// The part after the matched prefix and `/` (`syscalls/sys_enter_openat`
    /// for `tracepoint/syscalls/sys_enter_openat`); the attach direction for
    /// exact names like `cgroup_skb/ingress`; empty when there is none.
    pub attach_point: String,
}

/// Looks a section name up; `None` when libbpf would not know it either.
pub(crate) fn section_meaning(section: &str) -> Option<SectionMeaning> {
    for d in SECTION_DEFS {
        let attach_point = match d.how {
            Exact if section == d.name => d.name.split_once('/').map_or("", |(_, rest)| rest),
            Plus if section == d.name => "",
            Plus => match section
                .strip_prefix(d.name)
                .and_then(|r| r.strip_prefix('/'))
            {
                Some(rest) => rest,
                None => continue,
            },
            _ => continue,
        };
        return Some(SectionMeaning {
            prog_type: d.prog_type,
            expected_attach_type: d.attach,
            attach_point: attach_point.to_string(),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(section: &str, prog_type: ProgType, attach: Option<AttachType>, point: &str) {
        let m = section_meaning(section).unwrap_or_else(|| panic!("{section} unknown"));
        assert_eq!(m.prog_type, prog_type, "{section}");
        assert_eq!(m.expected_attach_type, attach, "{section}");
        assert_eq!(m.attach_point, point, "{section}");
    }

    #[test]
    fn maps_section_names_like_libbpf() {
        check("xdp", P::Xdp, Some(A::Xdp), "");
        check("xdp/devmap", P::Xdp, Some(A::XdpDevmap), "devmap");
        check("tc", P::SchedCls, None, "");
        check("tc/ingress", P::SchedCls, Some(A::TcxIngress), "ingress");
        check("classifier", P::SchedCls, None, "");
        check("socket", P::SocketFilter, None, "");
        check("socket/filter1", P::SocketFilter, None, "filter1");
        check(
            "tracepoint/syscalls/sys_enter_openat",
            P::Tracepoint,
            None,
            "syscalls/sys_enter_openat",
        );
        check(
            "tp/sched/sched_switch",
            P::Tracepoint,
            None,
            "sched/sched_switch",
        );
        check(
            "raw_tracepoint/sys_enter",
            P::RawTracepoint,
            None,
            "sys_enter",
        );
        check("raw_tp/sys_exit", P::RawTracepoint, None, "sys_exit");
        check("raw_tp.w/x", P::RawTracepointWritable, None, "x");
        check(
            "tp_btf/sched_switch",
            P::Tracing,
            Some(A::TraceRawTp),
            "sched_switch",
        );
        check(
            "fentry/do_unlinkat",
            P::Tracing,
            Some(A::TraceFentry),
            "do_unlinkat",
        );
        check(
            "fexit/do_unlinkat",
            P::Tracing,
            Some(A::TraceFexit),
            "do_unlinkat",
        );
        check("uprobe//bin/app:main", P::Kprobe, None, "/bin/app:main");
        check("uretprobe/app:f", P::Kprobe, None, "app:f");
        check("kprobe/tcp_connect", P::Kprobe, None, "tcp_connect");
        check(
            "kprobe.multi/tcp_*",
            P::Kprobe,
            Some(A::TraceKprobeMulti),
            "tcp_*",
        );
        check(
            "cgroup_skb/ingress",
            P::CgroupSkb,
            Some(A::CgroupInetIngress),
            "ingress",
        );
        check(
            "cgroup_skb/egress",
            P::CgroupSkb,
            Some(A::CgroupInetEgress),
            "egress",
        );
        check("lsm/file_open", P::Lsm, Some(A::LsmMac), "file_open");
        check("iter/task", P::Tracing, Some(A::TraceIter), "task");
        check(
            "cgroup/connect4",
            P::CgroupSockAddr,
            Some(A::CgroupInet4Connect),
            "connect4",
        );
    }

    #[test]
    fn unknown_and_near_miss_names_are_none() {
        assert!(section_meaning(".text").is_none());
        assert!(section_meaning("xdpfoo").is_none());
        assert!(section_meaning("tracepointx/a").is_none());
        assert!(section_meaning("cgroup_skb/sideways").is_none());
        assert!(section_meaning("").is_none());
    }
}
