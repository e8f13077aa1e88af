//! `__ksym` externs of the globals fixture resolved on this kernel: typed
//! variables and kfuncs to the BTF ids bpftool shows, untyped variables to
//! kallsyms addresses, absent weak ones to zero or a poisoned call; every
//! referencing instruction patched accordingly.

use std::path::Path;
use std::process::Command;

use ember::ember_core::btf::Btf;
use ember::ember_core::insn::Insn;
use ember::ember_core::ksym::{POISON_KFUNC_BASE, Resolved, patch, resolve};
use ember::ember_core::object::{CodeIndex, Object, SectionInsn};
use ember::ember_core::reloc::Targets;
use ember::kallsyms::Kallsyms;
use ember_tests::{fixture, skip, tool};

/// bpftool's id for `KIND 'name'` in this kernel's BTF.
fn bpftool_id(dump: &str, kind: &str, name: &str) -> u32 {
    let pat = format!("] {kind} '{name}'");
    let line = dump
        .lines()
        .find(|l| l.contains(&pat))
        .unwrap_or_else(|| panic!("{kind} {name} in bpftool dump"));
    line[1..line.find(']').expect("]")].parse().expect("id")
}

#[test]
fn globals_externs_on_this_kernel() {
    let sysfs = Path::new("/sys/kernel/btf/vmlinux");
    if !sysfs.exists() {
        return skip("/sys/kernel/btf/vmlinux is absent");
    }
    let Some(bpftool) = tool("bpftool") else {
        return skip("bpftool is not installed");
    };
    let dump = Command::new(bpftool)
        .args(["btf", "dump", "file"])
        .arg(sysfs)
        .output()
        .expect("bpftool");
    let dump = String::from_utf8(dump.stdout).expect("utf-8");
    let text = std::fs::read_to_string("/proc/kallsyms").expect("kallsyms");
    let ks = match Kallsyms::parse(&text, &["__start_rodata"]) {
        Ok(k) => k,
        Err(e) => return skip(&format!("kallsyms unusable: {e}")),
    };

    let vb = std::fs::read(sysfs).expect("vmlinux");
    let vmlinux = Btf::parse(&vb).expect("BTF");
    let ob = std::fs::read(fixture("globals.bpf-el.o")).expect("object");
    let obj = Object::parse(&ob, "globals").expect("object");
    let targets = Targets::single(&vmlinux);
    let resolved = resolve(&obj, &targets, &|n| ks.get(n).map(|k| k.addr)).expect("resolve");
    let by_name = |n: &str| {
        let i = obj
            .externs
            .iter()
            .position(|x| x.name == n)
            .expect("extern");
        (i, resolved[i])
    };
    let (_, acquire) = by_name("bpf_task_acquire");
    assert_eq!(
        acquire,
        Resolved::Kfunc {
            target: 0,
            id: ember::ember_core::btf::TypeId(bpftool_id(&dump, "FUNC", "bpf_task_acquire"))
        }
    );
    let (_, var) = by_name("bpf_prog_active");
    assert_eq!(
        var,
        Resolved::Var {
            target: 0,
            id: ember::ember_core::btf::TypeId(bpftool_id(&dump, "VAR", "bpf_prog_active"))
        }
    );
    let (_, untyped) = by_name("__start_rodata");
    assert_eq!(
        untyped,
        Resolved::Address(ks.get("__start_rodata").expect("addr").addr)
    );
    assert_eq!(by_name("not_a_symbol").1, Resolved::Absent);
    let (missing_idx, missing) = by_name("bpf_missing_kfunc");
    assert_eq!(missing, Resolved::Absent);

    let mut code: Vec<Vec<u8>> = obj.code.iter().map(|c| c.bytes.to_vec()).collect();
    patch(&obj, &resolved, &mut code, &|_| 0, &|_| 0).expect("patch");
    let insn = |ci: CodeIndex, i: SectionInsn| {
        let at = i.byte_offset();
        Insn::decode(
            code[ci.index()][at..at + 8].try_into().expect("slot"),
            obj.endian,
        )
    };
    for (xi, x) in obj.externs.iter().enumerate() {
        for &(ci, i) in &x.refs {
            let p = insn(ci, i);
            match (resolved[xi], p.code) {
                (Resolved::Kfunc { id, .. }, 0x85) => assert_eq!((p.src, p.imm), (2, id.0 as i32)),
                (Resolved::Kfunc { id, .. }, 0x18) | (Resolved::Var { id, .. }, 0x18) => {
                    assert_eq!((p.src, p.imm), (3, id.0 as i32))
                }
                (Resolved::Address(a), 0x18) => {
                    let hi = insn(ci, i.plus(1));
                    assert_eq!(
                        (p.src, p.imm as u32, hi.imm as u32),
                        (0, a as u32, (a >> 32) as u32)
                    );
                }
                (Resolved::Absent, 0x85) => assert_eq!(p.imm, POISON_KFUNC_BASE + xi as i32),
                (Resolved::Absent, 0x18) => assert_eq!((p.src, p.imm), (0, 0)),
                (Resolved::Kconfig, _) => {}
                (r, c) => panic!("{}: {r:?} on opcode {c:#x}", x.name),
            }
        }
    }
    assert!(
        obj.externs[missing_idx].refs.len() == 2,
        "call and address of the weak kfunc"
    );
}
