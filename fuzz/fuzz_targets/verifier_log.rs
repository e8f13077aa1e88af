//! Verifier logs from arbitrary bytes, traced against fixed programs the
//! way a failed load does (`load::poison::poison_cause`, and the lockdown
//! helper check): no panic, allocation proportional to the log, the same
//! cause twice, a cause only for a pc inside the program, and a poison
//! line in the verifier's own format appended to a log that names no
//! cause is traced to its relocation.
//!
//! The programs: `reject.bpf-el.o`'s `poisoned` (a CO-RE read of a field
//! the target lacks, relocated against the core_kernel fixture's BTF),
//! and `kernel_ids.bpf-el.o`'s programs with every extern absent.
#![no_main]

use ember::load::poison::poison_cause;
use ember::load::{Relocation, relocate_all};
use ember::privilege::{Lockdown, lockdown_helper_cause};
use ember_core::btf::Btf;
use ember_core::id::{FuncIndex, Pc};
use ember_core::insn::INSN_SIZE;
use ember_core::ksym::Resolved;
use ember_core::load::{Linked, link_program};
use ember_core::object::Object;
use ember_core::reloc::Targets;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
#[expect(dead_code, reason = "only the counting allocator is used here")]
mod common;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

static TARGET: &[u8] = include_bytes!("../../tests/fixtures/core_kernel.bpf-el.o");
static OBJECTS: [(&str, &[u8]); 2] = [
    (
        "reject",
        include_bytes!("../../tests/fixtures/reject.bpf-el.o"),
    ),
    (
        "kernel_ids",
        include_bytes!("../../tests/fixtures/kernel_ids.bpf-el.o"),
    ),
];

/// One object, relocated, with each program linked.
struct Fixed {
    obj: Object<'static>,
    relocations: Vec<Relocation>,
    resolved: Vec<Resolved>,
    /// Each program, and the (pc, cause) of its poisoned relocations.
    programs: Vec<(Linked, Vec<(u32, String)>)>,
}

fn build() -> Vec<Fixed> {
    let target = Btf::parse_elf(TARGET, None).expect("fixture BTF");
    let targets = Targets::single(&target);
    OBJECTS
        .iter()
        .map(|(name, bytes)| {
            let obj = Object::parse(bytes, name).expect("fixture object");
            let (code, relocations) = relocate_all(&obj, &targets).unwrap_or_else(|_| {
                (
                    obj.code.iter().map(|c| c.bytes.to_vec()).collect(),
                    Vec::new(),
                )
            });
            let resolved = vec![Resolved::Absent; obj.externs.len()];
            let programs = (0..obj.functions.len())
                .filter(|&i| obj.functions[i].is_program)
                .filter_map(|i| {
                    let l =
                        link_program(&obj, &code, FuncIndex(i), &|m| Some(m.index() as i32 + 3))
                            .ok()?;
                    let count = (l.insns.len() / INSN_SIZE) as u32;
                    let poisoned = relocations
                        .iter()
                        .filter(|r| r.outcome.is_poisoned())
                        .filter_map(|r| {
                            let pc = (0..count)
                                .find(|&pc| l.origin(Pc(pc)) == Some((r.func, r.insn)))?;
                            Some((pc, r.text.clone()))
                        })
                        .collect();
                    Some((l, poisoned))
                })
                .collect();
            Fixed {
                obj,
                relocations,
                resolved,
                programs,
            }
        })
        .collect()
}

thread_local! {
    static FIXED: Vec<Fixed> = build();
}

/// The log as the loader keeps it: up to the first NUL, lossily decoded.
fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, raw)) = data.split_first() else {
        return;
    };
    FIXED.with(|fixed| {
        let f = &fixed[usize::from(pick) % fixed.len()];
        let Some((linked, poisoned)) = f
            .programs
            .get(usize::from(pick >> 1) % f.programs.len().max(1))
        else {
            panic!("every fixture has a program");
        };
        let cause = |log: &str| poison_cause(log, &f.obj, linked, &f.relocations, &f.resolved);
        let live = common::reset_peak();
        let log = log_text(raw);
        let first = cause(&log);
        // Lossy decoding makes each invalid byte 3, in a string grown by
        // doubling: up to 6 times the log.
        let peak = common::peak_since(live);
        assert!(
            peak <= 8 * raw.len() + 4096,
            "tracing allocated {peak} for {} bytes",
            raw.len()
        );
        assert_eq!(first, cause(&log), "nondeterministic");
        let count = linked.insns.len() / INSN_SIZE;
        if let Some(c) = &first {
            // Only a line `PC: ...unknown#...` with PC inside the program.
            let placed = log.lines().any(|l| {
                l.split_once(": ")
                    .and_then(|(pc, _)| pc.trim().parse::<usize>().ok())
                    .is_some_and(|pc| pc < count)
                    && l.contains("unknown#")
            });
            assert!(placed, "cause {c:?} for no pc in the program");
            let known = f.relocations.iter().any(|r| r.text == *c)
                || c.ends_with(": poisoned CO-RE relocation")
                || c.contains("which this kernel lacks");
            assert!(known, "unexpected cause {c:?}");
        } else {
            // Round trip: the verifier's line for each poisoned call, after
            // a log that names no cause, is traced to its relocation.
            for (pc, text) in poisoned {
                let line = format!("{log}\n{pc}: (85) call unknown#195896080\n");
                assert_eq!(cause(&line).as_deref(), Some(text.as_str()), "{line:?}");
            }
        }
        for mode in [
            Lockdown::None,
            Lockdown::Integrity,
            Lockdown::Confidentiality,
        ] {
            assert_eq!(
                lockdown_helper_cause(&log, mode),
                lockdown_helper_cause(&log, mode)
            );
        }
    });
});
