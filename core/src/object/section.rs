//! Program section names → program type, expected attach type and attach
//! target, following libbpf's `SEC()` conventions.
//!
//! Matching is libbpf's: a definition ending in `+` matches the bare name
//! or `name/anything`; one ending in `/` matches any name with that prefix;
//! anything else must match exactly. The first definition that matches
//! wins, so more specific names come first.

use super::kinds::{AttachType as A, ProgType as P};

/// What a section name says about its programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecDef {
    /// The definition that matched (`kprobe+`, `cgroup/connect4`, ...).
    pub pattern: &'static str,
    /// Program type.
    pub prog_type: P,
    /// Expected attach type, when the section implies one.
    pub attach_type: Option<A>,
    /// Whether the program is sleepable (`.s` variants, `syscall`).
    pub sleepable: bool,
    /// Whether an XDP program accepts multi-buffer frames (`xdp.frags`).
    pub xdp_frags: bool,
    /// Whether the program is loaded against a BTF id named by the text
    /// after the slash (libbpf's `SEC_ATTACH_BTF`: `fentry`, `lsm`,
    /// `tp_btf`, `iter`, `freplace`, ...).
    pub attach_btf: bool,
}

const fn d(pattern: &'static str, prog_type: P, attach_type: Option<A>) -> SecDef {
    SecDef {
        pattern,
        prog_type,
        attach_type,
        sleepable: false,
        xdp_frags: false,
        attach_btf: false,
    }
}

const fn s(pattern: &'static str, prog_type: P, attach_type: Option<A>) -> SecDef {
    SecDef {
        sleepable: true,
        ..d(pattern, prog_type, attach_type)
    }
}

/// `SEC_ATTACH_BTF`.
const fn b(pattern: &'static str, prog_type: P, attach_type: Option<A>) -> SecDef {
    SecDef {
        attach_btf: true,
        ..d(pattern, prog_type, attach_type)
    }
}

/// `SEC_ATTACH_BTF | SEC_SLEEPABLE`.
const fn bs(pattern: &'static str, prog_type: P, attach_type: Option<A>) -> SecDef {
    SecDef {
        sleepable: true,
        ..b(pattern, prog_type, attach_type)
    }
}

const fn f(pattern: &'static str, attach_type: A) -> SecDef {
    SecDef {
        xdp_frags: true,
        ..d(pattern, P::XDP, Some(attach_type))
    }
}

const fn sa(pattern: &'static str, attach_type: A) -> SecDef {
    d(pattern, P::CGROUP_SOCK_ADDR, Some(attach_type))
}

/// The table, in libbpf 1.7's `section_defs[]` order, plus the names
/// libbpf gained after 1.7 (`tracepoint.s`, `tp_btf.s`, ...: see
/// README's "libbpf 1.7 vs 1.1"), slotted where libbpf puts them.
pub const SEC_DEFS: &[SecDef] = &[
    d("socket", P::SOCKET_FILTER, None),
    d(
        "sk_reuseport/migrate",
        P::SK_REUSEPORT,
        Some(A::SK_REUSEPORT_SELECT_OR_MIGRATE),
    ),
    d(
        "sk_reuseport",
        P::SK_REUSEPORT,
        Some(A::SK_REUSEPORT_SELECT),
    ),
    d("kprobe+", P::KPROBE, None),
    d("uprobe+", P::KPROBE, None),
    s("uprobe.s+", P::KPROBE, None),
    d("kretprobe+", P::KPROBE, None),
    d("uretprobe+", P::KPROBE, None),
    s("uretprobe.s+", P::KPROBE, None),
    d("kprobe.multi+", P::KPROBE, Some(A::TRACE_KPROBE_MULTI)),
    d("kretprobe.multi+", P::KPROBE, Some(A::TRACE_KPROBE_MULTI)),
    d("kprobe.session+", P::KPROBE, Some(A::TRACE_KPROBE_SESSION)),
    d("uprobe.multi+", P::KPROBE, Some(A::TRACE_UPROBE_MULTI)),
    d("uretprobe.multi+", P::KPROBE, Some(A::TRACE_UPROBE_MULTI)),
    d("uprobe.session+", P::KPROBE, Some(A::TRACE_UPROBE_SESSION)),
    s("uprobe.multi.s+", P::KPROBE, Some(A::TRACE_UPROBE_MULTI)),
    s("uretprobe.multi.s+", P::KPROBE, Some(A::TRACE_UPROBE_MULTI)),
    s(
        "uprobe.session.s+",
        P::KPROBE,
        Some(A::TRACE_UPROBE_SESSION),
    ),
    d("ksyscall+", P::KPROBE, None),
    d("kretsyscall+", P::KPROBE, None),
    d("usdt+", P::KPROBE, None),
    s("usdt.s+", P::KPROBE, None),
    d("tc/ingress", P::SCHED_CLS, Some(A::TCX_INGRESS)),
    d("tc/egress", P::SCHED_CLS, Some(A::TCX_EGRESS)),
    d("tcx/ingress", P::SCHED_CLS, Some(A::TCX_INGRESS)),
    d("tcx/egress", P::SCHED_CLS, Some(A::TCX_EGRESS)),
    d("tc", P::SCHED_CLS, None),
    d("classifier", P::SCHED_CLS, None),
    d("action", P::SCHED_ACT, None),
    d("netkit/primary", P::SCHED_CLS, Some(A::NETKIT_PRIMARY)),
    d("netkit/peer", P::SCHED_CLS, Some(A::NETKIT_PEER)),
    d("tracepoint+", P::TRACEPOINT, None),
    d("tp+", P::TRACEPOINT, None),
    s("tracepoint.s+", P::TRACEPOINT, None),
    s("tp.s+", P::TRACEPOINT, None),
    d("raw_tracepoint+", P::RAW_TRACEPOINT, None),
    d("raw_tp+", P::RAW_TRACEPOINT, None),
    s("raw_tracepoint.s+", P::RAW_TRACEPOINT, None),
    s("raw_tp.s+", P::RAW_TRACEPOINT, None),
    d("raw_tracepoint.w+", P::RAW_TRACEPOINT_WRITABLE, None),
    d("raw_tp.w+", P::RAW_TRACEPOINT_WRITABLE, None),
    b("tp_btf+", P::TRACING, Some(A::TRACE_RAW_TP)),
    bs("tp_btf.s+", P::TRACING, Some(A::TRACE_RAW_TP)),
    b("fentry+", P::TRACING, Some(A::TRACE_FENTRY)),
    b("fmod_ret+", P::TRACING, Some(A::MODIFY_RETURN)),
    b("fexit+", P::TRACING, Some(A::TRACE_FEXIT)),
    bs("fentry.s+", P::TRACING, Some(A::TRACE_FENTRY)),
    bs("fmod_ret.s+", P::TRACING, Some(A::MODIFY_RETURN)),
    bs("fexit.s+", P::TRACING, Some(A::TRACE_FEXIT)),
    b("fsession+", P::TRACING, Some(A::TRACE_FSESSION)),
    bs("fsession.s+", P::TRACING, Some(A::TRACE_FSESSION)),
    // tracing_multi: the functions are named by BTF ids when the link is
    // made, so the program loads without an attach BTF id.
    d("fentry.multi+", P::TRACING, Some(A::TRACE_FENTRY_MULTI)),
    d("fexit.multi+", P::TRACING, Some(A::TRACE_FEXIT_MULTI)),
    d("fsession.multi+", P::TRACING, Some(A::TRACE_FSESSION_MULTI)),
    s("fentry.multi.s+", P::TRACING, Some(A::TRACE_FENTRY_MULTI)),
    s("fexit.multi.s+", P::TRACING, Some(A::TRACE_FEXIT_MULTI)),
    s(
        "fsession.multi.s+",
        P::TRACING,
        Some(A::TRACE_FSESSION_MULTI),
    ),
    b("freplace+", P::EXT, None),
    b("lsm+", P::LSM, Some(A::LSM_MAC)),
    bs("lsm.s+", P::LSM, Some(A::LSM_MAC)),
    b("lsm_cgroup+", P::LSM, Some(A::LSM_CGROUP)),
    b("iter+", P::TRACING, Some(A::TRACE_ITER)),
    bs("iter.s+", P::TRACING, Some(A::TRACE_ITER)),
    s("syscall", P::SYSCALL, None),
    f("xdp.frags/devmap", A::XDP_DEVMAP),
    d("xdp/devmap", P::XDP, Some(A::XDP_DEVMAP)),
    f("xdp.frags/cpumap", A::XDP_CPUMAP),
    d("xdp/cpumap", P::XDP, Some(A::XDP_CPUMAP)),
    f("xdp.frags", A::XDP),
    d("xdp", P::XDP, Some(A::XDP)),
    d("perf_event", P::PERF_EVENT, None),
    d("lwt_in", P::LWT_IN, None),
    d("lwt_out", P::LWT_OUT, None),
    d("lwt_xmit", P::LWT_XMIT, None),
    d("lwt_seg6local", P::LWT_SEG6LOCAL, None),
    d("sockops", P::SOCK_OPS, Some(A::CGROUP_SOCK_OPS)),
    d(
        "sk_skb/stream_parser",
        P::SK_SKB,
        Some(A::SK_SKB_STREAM_PARSER),
    ),
    d(
        "sk_skb/stream_verdict",
        P::SK_SKB,
        Some(A::SK_SKB_STREAM_VERDICT),
    ),
    d("sk_skb/verdict", P::SK_SKB, Some(A::SK_SKB_VERDICT)),
    d("sk_skb", P::SK_SKB, None),
    d("sk_msg", P::SK_MSG, Some(A::SK_MSG_VERDICT)),
    d("lirc_mode2", P::LIRC_MODE2, Some(A::LIRC_MODE2)),
    d("flow_dissector", P::FLOW_DISSECTOR, Some(A::FLOW_DISSECTOR)),
    d(
        "cgroup_skb/ingress",
        P::CGROUP_SKB,
        Some(A::CGROUP_INET_INGRESS),
    ),
    d(
        "cgroup_skb/egress",
        P::CGROUP_SKB,
        Some(A::CGROUP_INET_EGRESS),
    ),
    d("cgroup/skb", P::CGROUP_SKB, None),
    d(
        "cgroup/sock_create",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET_SOCK_CREATE),
    ),
    d(
        "cgroup/sock_release",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET_SOCK_RELEASE),
    ),
    d(
        "cgroup/sock",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET_SOCK_CREATE),
    ),
    d(
        "cgroup/post_bind4",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET4_POST_BIND),
    ),
    d(
        "cgroup/post_bind6",
        P::CGROUP_SOCK,
        Some(A::CGROUP_INET6_POST_BIND),
    ),
    sa("cgroup/bind4", A::CGROUP_INET4_BIND),
    sa("cgroup/bind6", A::CGROUP_INET6_BIND),
    sa("cgroup/connect4", A::CGROUP_INET4_CONNECT),
    sa("cgroup/connect6", A::CGROUP_INET6_CONNECT),
    sa("cgroup/connect_unix", A::CGROUP_UNIX_CONNECT),
    sa("cgroup/sendmsg4", A::CGROUP_UDP4_SENDMSG),
    sa("cgroup/sendmsg6", A::CGROUP_UDP6_SENDMSG),
    sa("cgroup/sendmsg_unix", A::CGROUP_UNIX_SENDMSG),
    sa("cgroup/recvmsg4", A::CGROUP_UDP4_RECVMSG),
    sa("cgroup/recvmsg6", A::CGROUP_UDP6_RECVMSG),
    sa("cgroup/recvmsg_unix", A::CGROUP_UNIX_RECVMSG),
    sa("cgroup/getpeername4", A::CGROUP_INET4_GETPEERNAME),
    sa("cgroup/getpeername6", A::CGROUP_INET6_GETPEERNAME),
    sa("cgroup/getpeername_unix", A::CGROUP_UNIX_GETPEERNAME),
    sa("cgroup/getsockname4", A::CGROUP_INET4_GETSOCKNAME),
    sa("cgroup/getsockname6", A::CGROUP_INET6_GETSOCKNAME),
    sa("cgroup/getsockname_unix", A::CGROUP_UNIX_GETSOCKNAME),
    d("cgroup/sysctl", P::CGROUP_SYSCTL, Some(A::CGROUP_SYSCTL)),
    d(
        "cgroup/getsockopt",
        P::CGROUP_SOCKOPT,
        Some(A::CGROUP_GETSOCKOPT),
    ),
    d(
        "cgroup/setsockopt",
        P::CGROUP_SOCKOPT,
        Some(A::CGROUP_SETSOCKOPT),
    ),
    d("cgroup/dev", P::CGROUP_DEVICE, Some(A::CGROUP_DEVICE)),
    d("struct_ops+", P::STRUCT_OPS, None),
    s("struct_ops.s+", P::STRUCT_OPS, None),
    d("sk_lookup", P::SK_LOOKUP, Some(A::SK_LOOKUP)),
    d("netfilter", P::NETFILTER, Some(A::NETFILTER)),
];

fn matches(pattern: &str, name: &str) -> bool {
    if let Some(p) = pattern.strip_suffix('+') {
        match name.strip_prefix(p) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    } else if pattern.ends_with('/') {
        name.starts_with(pattern)
    } else {
        name == pattern
    }
}

/// The definition a section name matches, or `None` for a name libbpf
/// would not know either.
pub fn lookup(section: &str) -> Option<&'static SecDef> {
    SEC_DEFS.iter().find(|d| matches(d.pattern, section))
}

/// What follows `pattern/` in `section` (the kprobe function, the
/// tracepoint `category/name`, the uprobe `binary:function+offset`).
pub fn attach_target<'s>(def: &SecDef, section: &'s str) -> Option<&'s str> {
    let base = def.pattern.trim_end_matches('+');
    section
        .strip_prefix(base)?
        .strip_prefix('/')
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libbpf_matching_rules() {
        let t = |s: &str| lookup(s).map(|d| d.pattern);
        assert_eq!(t("kprobe/do_sys_open"), Some("kprobe+"));
        assert_eq!(t("kprobe"), Some("kprobe+"));
        assert_eq!(t("kprobex"), None);
        assert_eq!(t("kprobe.multi/foo*"), Some("kprobe.multi+"));
        assert_eq!(t("uprobe.s//bin/sh:main"), Some("uprobe.s+"));
        assert_eq!(t("xdp.frags"), Some("xdp.frags"));
        assert_eq!(t("xdp/cpumap"), Some("xdp/cpumap"));
        assert_eq!(t("xdp_foo"), None);
        assert_eq!(t("cgroup/sock"), Some("cgroup/sock"));
        assert_eq!(t("cgroup/sock_create"), Some("cgroup/sock_create"));
        assert_eq!(t("tc"), Some("tc"));
        assert_eq!(t("tcx/ingress"), Some("tcx/ingress"));
        assert_eq!(t("raw_tp.w/foo"), Some("raw_tp.w+"));
        assert_eq!(t("fentry.s/vfs_read"), Some("fentry.s+"));
        assert_eq!(t("bogus"), None);
    }

    /// Every program of `libbpf17/sections_17.bpf.c` gets libbpf 1.7's
    /// (program type, expected attach type, sleepable) for its section
    /// (written from libbpf's `section_defs[]`, not from this table).
    #[test]
    fn libbpf_17_section_names() {
        use crate::object::Object;
        const NONE: Option<A> = None;
        let want: &[(&str, P, Option<A>, bool)] = &[
            (
                "kprobe.session/do_unlinkat",
                P::KPROBE,
                Some(A::TRACE_KPROBE_SESSION),
                false,
            ),
            (
                "uprobe.session//usr/bin/bash:readline",
                P::KPROBE,
                Some(A::TRACE_UPROBE_SESSION),
                false,
            ),
            (
                "uprobe.session.s//usr/bin/bash:readline",
                P::KPROBE,
                Some(A::TRACE_UPROBE_SESSION),
                true,
            ),
            (
                "netkit/primary",
                P::SCHED_CLS,
                Some(A::NETKIT_PRIMARY),
                false,
            ),
            ("netkit/peer", P::SCHED_CLS, Some(A::NETKIT_PEER), false),
            (
                "tracepoint.s/syscalls/sys_enter_openat",
                P::TRACEPOINT,
                NONE,
                true,
            ),
            ("tp.s/syscalls/sys_enter_openat", P::TRACEPOINT, NONE, true),
            ("raw_tracepoint.s/sys_enter", P::RAW_TRACEPOINT, NONE, true),
            ("raw_tp.s/sys_enter", P::RAW_TRACEPOINT, NONE, true),
            (
                "tp_btf.s/sys_enter",
                P::TRACING,
                Some(A::TRACE_RAW_TP),
                true,
            ),
            (
                "fsession/do_unlinkat",
                P::TRACING,
                Some(A::TRACE_FSESSION),
                false,
            ),
            (
                "fsession.s/do_unlinkat",
                P::TRACING,
                Some(A::TRACE_FSESSION),
                true,
            ),
            (
                "fentry.multi/do_unlink*",
                P::TRACING,
                Some(A::TRACE_FENTRY_MULTI),
                false,
            ),
            (
                "fexit.multi/do_unlink*",
                P::TRACING,
                Some(A::TRACE_FEXIT_MULTI),
                false,
            ),
            (
                "fsession.multi/do_unlink*",
                P::TRACING,
                Some(A::TRACE_FSESSION_MULTI),
                false,
            ),
            (
                "fentry.multi.s/do_unlink*",
                P::TRACING,
                Some(A::TRACE_FENTRY_MULTI),
                true,
            ),
            (
                "fexit.multi.s/do_unlink*",
                P::TRACING,
                Some(A::TRACE_FEXIT_MULTI),
                true,
            ),
            (
                "fsession.multi.s/do_unlink*",
                P::TRACING,
                Some(A::TRACE_FSESSION_MULTI),
                true,
            ),
            (
                "cgroup/connect_unix",
                P::CGROUP_SOCK_ADDR,
                Some(A::CGROUP_UNIX_CONNECT),
                false,
            ),
            (
                "cgroup/sendmsg_unix",
                P::CGROUP_SOCK_ADDR,
                Some(A::CGROUP_UNIX_SENDMSG),
                false,
            ),
            (
                "cgroup/recvmsg_unix",
                P::CGROUP_SOCK_ADDR,
                Some(A::CGROUP_UNIX_RECVMSG),
                false,
            ),
            (
                "cgroup/getpeername_unix",
                P::CGROUP_SOCK_ADDR,
                Some(A::CGROUP_UNIX_GETPEERNAME),
                false,
            ),
            (
                "cgroup/getsockname_unix",
                P::CGROUP_SOCK_ADDR,
                Some(A::CGROUP_UNIX_GETSOCKNAME),
                false,
            ),
        ];
        for bytes in [
            include_bytes!("../../../tests/fixtures/libbpf17/sections_17.bpf-el.o").as_slice(),
            include_bytes!("../../../tests/fixtures/libbpf17/sections_17.bpf-eb.o").as_slice(),
        ] {
            let obj = Object::parse(bytes, "sections_17").unwrap();
            let got: alloc::vec::Vec<_> = obj
                .programs()
                .map(|f| {
                    let d = f.sec_def.expect(f.name);
                    let sec = obj.code_section(f.section).map_or("", |c| c.name);
                    (sec, d.prog_type, d.attach_type, d.sleepable)
                })
                .collect();
            assert_eq!(got, want);
        }
        // The new attach types print as libbpf names them.
        assert_eq!(A::TRACE_FSESSION.name(), Some("trace_fsession"));
        assert_eq!(
            alloc::format!("{}", A::CGROUP_UNIX_CONNECT),
            "cgroup_unix_connect"
        );
    }

    #[test]
    fn attach_btf_flag_follows_libbpf() {
        let f = |s: &str| lookup(s).map(|d| d.attach_btf);
        for s in [
            "fentry/f",
            "fsession/f",
            "tp_btf.s/t",
            "lsm.s/h",
            "iter/task",
            "freplace/g",
        ] {
            assert_eq!(f(s), Some(true), "{s}");
        }
        for s in ["fentry.multi/f*", "kprobe/f", "tp.s/a/b", "syscall"] {
            assert_eq!(f(s), Some(false), "{s}");
        }
    }

    #[test]
    fn targets() {
        fn target(s: &str) -> Option<&str> {
            lookup(s).and_then(|d| attach_target(d, s))
        }
        assert_eq!(target("kprobe/do_sys_open"), Some("do_sys_open"));
        assert_eq!(
            target("tracepoint/syscalls/sys_enter_openat"),
            Some("syscalls/sys_enter_openat")
        );
        assert_eq!(
            target("uprobe//usr/bin/bash:readline+4"),
            Some("/usr/bin/bash:readline+4")
        );
        assert_eq!(target("kprobe"), None);
    }
}
