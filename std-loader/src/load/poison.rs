//! Tracing a verifier rejection back to a poisoned instruction: the
//! verifier log names the pc of `call unknown#N`, and N says which poison
//! it is (a CO-RE relocation that could not be applied, or a weak kfunc
//! the kernel lacks).

use ember_core::id::Pc;
use ember_core::insn::INSN_SIZE;
use ember_core::ksym::{POISON_KFUNC_BASE, Resolved};
use ember_core::load::Linked;
use ember_core::object::Object;

use super::Relocation;

/// The poison CO-RE writes into instructions it cannot relocate
/// (`call 0xbad2310`).
const POISON_CALL: i64 = 0x0bad_2310;

/// Maps `call unknown#195896080` (a poisoned CO-RE relocation) or a
/// poisoned weak kfunc in verifier log `log` back to its origin in `obj`:
/// `linked` is the program as loaded, `relocations` the CO-RE relocations
/// applied to `obj` and `resolved` its externs, by index. `None` when no
/// log line names a poison at a pc of the program.
pub fn poison_cause(
    log: &str,
    obj: &Object<'_>,
    linked: &Linked,
    relocations: &[Relocation],
    resolved: &[Resolved],
) -> Option<String> {
    let count = linked.insns.len() / INSN_SIZE;
    first_traced(log, |pc, num| {
        // A pc outside the program (a log line about something else) is
        // skipped; the poisoned call may come later. `origin` alone would
        // place a pc past the end in the last function.
        if usize::try_from(pc).map_or(true, |p| p >= count) {
            return None;
        }
        let (func, insn) = linked.origin(Pc(pc))?;
        let fname = obj.function(func).map_or("", |f| f.name);
        if num == POISON_CALL {
            let r = relocations
                .iter()
                .find(|r| r.func == func && r.insn == insn && r.outcome.is_poisoned());
            return Some(match r {
                Some(r) => r.text.clone(),
                None => format!("{fname}: insn {insn}: poisoned CO-RE relocation"),
            });
        }
        let xi = usize::try_from(num.checked_sub(i64::from(POISON_KFUNC_BASE))?).ok()?;
        let x = obj.externs.get(xi)?;
        (resolved.get(xi) == Some(&Resolved::Absent)).then(|| {
            format!(
                "{fname}: insn {insn}: call to weak kfunc '{}', which this kernel lacks; guard it with bpf_ksym_exists()",
                x.name
            )
        })
    })
}

/// The first verifier-log line `PC: ... unknown#NUM ...` that `explain`
/// maps to a cause; lines it cannot explain are passed over.
fn first_traced(log: &str, mut explain: impl FnMut(u32, i64) -> Option<String>) -> Option<String> {
    log.lines().find_map(|line| {
        let (pc, rest) = line.split_once(": ")?;
        let pc = pc.trim().parse::<u32>().ok()?;
        let num = rest
            .split("unknown#")
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|s| s.parse::<i64>().ok())?;
        explain(pc, num)
    })
}

#[cfg(test)]
mod tests {
    use super::{first_traced, poison_cause};
    use ember_core::id::FuncIndex;
    use ember_core::insn::INSN_SIZE;
    use ember_core::load::link_program;
    use ember_core::object::Object;

    #[test]
    fn a_pc_past_the_program_is_not_placed() {
        let bytes = include_bytes!("../../../tests/fixtures/reject.bpf-el.o");
        let obj = Object::parse(bytes, "reject").unwrap();
        let fi = obj
            .functions
            .iter()
            .position(|f| f.name == "poisoned")
            .unwrap();
        let code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
        let linked = link_program(&obj, &code, FuncIndex(fi), &|_| Some(3)).unwrap();
        let count = linked.insns.len() / INSN_SIZE;
        let cause = |pc: usize| {
            let log = format!("{pc}: (85) call unknown#195896080\n");
            poison_cause(&log, &obj, &linked, &[], &[])
        };
        let last = count - 1;
        assert_eq!(
            cause(last).as_deref(),
            Some(format!("poisoned: insn {last}: poisoned CO-RE relocation").as_str())
        );
        assert_eq!(cause(count), None);
        assert_eq!(cause(u32::MAX as usize), None);
    }

    #[test]
    fn tracing_goes_past_lines_it_cannot_place() {
        let log = "0: (b7) r1 = 0\n\
                   7: (85) call unknown#195896080\n\
                   12: (85) call unknown#195896080\n\
                   invalid func unknown#195896080\n";
        // pc 7 lies in no function; pc 12 does.
        let got = first_traced(log, |pc, num| (pc == 12).then(|| format!("{pc}/{num}")));
        assert_eq!(got.as_deref(), Some("12/195896080"));
        assert_eq!(first_traced(log, |_, _| None), None);
    }
}
