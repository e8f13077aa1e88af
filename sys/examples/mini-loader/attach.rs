//! Attaching by section, as libbpf's `bpf_program__attach` reads it, for
//! the families the thin loader does (tracepoint, raw tracepoint, BTF
//! tracing, iterators), and pinning the link. Every other program stays
//! loaded and pinned, and is reported: skipped (its section names no
//! target) or not attached (a family only the `ember` CLI attaches).

use alloc::ffi::CString;
use alloc::format;
use alloc::string::String;

use ember_core::object::AttachType;
use ember_core::object::section;
use ember_sys::{
    AsFd, LinkCreate, LinkExtra, LinkTarget, OwnedFd, PerfEventAttr, link_create, perf_event_open,
    raw_tracepoint_open,
};

use crate::files::{self, Pins, sys};
use crate::load::Prog;
use crate::{Out, say};

/// Attaches `p` where its section says and pins the link as
/// `links/NAME`.
pub(crate) fn attach_and_pin(p: &Prog, links: &str, pins: &mut Pins) -> Result<(), String> {
    let sec = p.section.as_str();
    let rest = section::attach_target(p.def, sec);
    let base = p.def.pattern.trim_end_matches(['+', '/']);
    let fail = |what: String| format!("attach {} (section '{sec}'): {what}", p.name);
    let prog = p.fd.as_fd();
    // The perf event a tracepoint link holds: open until the link is
    // pinned (the link keeps its own reference).
    let mut _perf = None;
    let (link, target): (OwnedFd, String) = match (base, rest) {
        ("tracepoint" | "tp", Some(rest)) => {
            let (cat, name) = rest
                .split_once('/')
                .ok_or_else(|| fail(String::from("a tracepoint is CATEGORY/NAME")))?;
            let id = files::tracepoint_id(cat, name).map_err(fail)?;
            // libbpf's choice: any process, CPU 0; the program runs
            // wherever the tracepoint fires.
            let perf = perf_event_open(&PerfEventAttr::tracepoint(id), None, Some(0), None)
                .map_err(|e| fail(sys(&e)))?;
            let link = link_create(&LinkCreate {
                prog,
                target: LinkTarget::Fd(perf.as_fd()),
                attach_type: AttachType::PERF_EVENT.0,
                flags: 0,
                extra: LinkExtra::PerfEvent { bpf_cookie: 0 },
            })
            .map_err(|e| fail(sys(&e)))?;
            _perf = Some(perf);
            (link, format!("tracepoint '{cat}/{name}'"))
        }
        ("raw_tracepoint" | "raw_tp" | "raw_tracepoint.w" | "raw_tp.w", Some(rest)) => {
            let c = CString::new(rest).map_err(|_| fail(String::from("a NUL in the name")))?;
            let link = raw_tracepoint_open(prog, Some(&c)).map_err(|e| fail(sys(&e)))?;
            (link, format!("raw tracepoint '{rest}'"))
        }
        // Loaded against their kernel BTF id: the kernel knows the target.
        (
            "tp_btf" | "fentry" | "fentry.s" | "fexit" | "fexit.s" | "fmod_ret" | "fmod_ret.s"
            | "lsm" | "lsm.s",
            Some(_),
        ) => {
            let link = raw_tracepoint_open(prog, None).map_err(|e| fail(sys(&e)))?;
            (link, format!("'{sec}' (BTF id {})", p.attach_btf_id))
        }
        // Iterators over a map's elements need the map.
        ("iter" | "iter.s", Some("bpf_map_elem" | "bpf_sk_storage_map" | "sockmap")) => {
            not_attached(p, "a map iterator needs its map");
            return Ok(());
        }
        ("iter" | "iter.s", Some(_)) => {
            let link = link_create(&LinkCreate {
                prog,
                target: LinkTarget::None,
                attach_type: AttachType::TRACE_ITER.0,
                flags: 0,
                extra: LinkExtra::Iter(&[]),
            })
            .map_err(|e| fail(sys(&e)))?;
            (link, format!("iterator '{sec}'"))
        }
        (_, Some(_)) => {
            not_attached(p, &format!("{base} attachment is not supported"));
            return Ok(());
        }
        (_, None) => {
            say(
                Out::Stdout,
                &format!("skipped {}: its section names no target", p.name),
            );
            return Ok(());
        }
    };
    let path = format!("{links}/{}", p.name);
    pins.pin(link.as_fd(), &path)
        .map_err(|e| format!("pin link of {} at {path}: {e}", p.name))?;
    say(Out::Stdout, &format!("attached {} to {target}", p.name));
    Ok(())
}

/// Reports a program left loaded and pinned but not attached.
fn not_attached(p: &Prog, why: &str) {
    say(
        Out::Stderr,
        &format!(
            "mini-loader: {} (section '{}'): loaded and pinned, not attached: {why}; use the `ember` CLI",
            p.name, p.section
        ),
    );
}
