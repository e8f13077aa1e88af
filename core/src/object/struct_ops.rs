//! struct_ops maps: each variable of a `.struct_ops` or `.struct_ops.link`
//! section is a `BPF_MAP_TYPE_STRUCT_OPS` map whose value is a kernel
//! struct of function pointers (`struct tcp_congestion_ops`), declared
//! locally with the members the object sets.
//!
//! Function-pointer members name programs through `R_BPF_64_ABS64`
//! relocations in the section; other members are initialized by the
//! section's bytes. What the object says is modelled here; placing it in
//! the running kernel's layout is the loader's job (the kernel type
//! `bpf_struct_ops_<name>` wraps the struct in its member `data`).

use alloc::vec::Vec;

use object::{
    Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags, RelocationTarget,
    SymbolSection,
};

use super::error::{ObjectError, ObjectErrorKind};
use super::parse::{Elf, PResult, err, fit, try_push};
use super::{FuncIndex, Object, ProgType, R_BPF_64_ABS64, SectionIndex, SectionInsn};
use crate::btf::{Btf, Kind, TypeId};
use crate::insn::INSN_SIZE_U64;

/// `.struct_ops`: maps registered by a map update.
pub const STRUCT_OPS_SEC: &str = ".struct_ops";
/// `.struct_ops.link`: maps created with `BPF_F_LINK`, registered by a link.
pub const STRUCT_OPS_LINK_SEC: &str = ".struct_ops.link";

/// One struct_ops map: a variable of a `.struct_ops` section.
#[derive(Debug, Clone)]
pub struct StructOps<'a> {
    /// The variable's name, which is the map's.
    pub name: &'a str,
    /// Its section (`.struct_ops` or `.struct_ops.link`).
    pub section: &'a str,
    /// ELF section index.
    pub section_index: SectionIndex,
    /// Registered through a link (`.struct_ops.link`, map flag
    /// `BPF_F_LINK`) rather than by a map update.
    pub link: bool,
    /// The local struct type (modifiers and typedefs skipped).
    pub type_id: TypeId,
    /// Its name: the kernel struct of that name is the target.
    pub type_name: &'a str,
    /// Offset of the variable in its section.
    pub offset: u32,
    /// Size of the local struct.
    pub size: u32,
    /// The variable's initial bytes in local layout (shorter than `size`
    /// when the section holds fewer bytes: the rest is zero).
    pub data: &'a [u8],
    /// Function-pointer members set to programs, in member order.
    pub progs: Vec<StructOpsProg<'a>>,
}

/// A function-pointer member of a struct_ops map set to a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StructOpsProg<'a> {
    /// The member's index in the local struct.
    pub member: u32,
    /// The member's name.
    pub member_name: &'a str,
    /// The program.
    pub func: FuncIndex,
}

impl StructOps<'_> {
    /// The program set at the local member with index `member`.
    pub fn prog_at(&self, member: u32) -> Option<FuncIndex> {
        self.progs
            .iter()
            .find(|p| p.member == member)
            .map(|p| p.func)
    }

    /// The initial bytes `off..off + len` in local layout, `None` past the
    /// struct; bytes the section does not hold read as zero.
    pub fn bytes(&self, off: u32, len: u32) -> Option<Vec<u8>> {
        let end = off.checked_add(len)?;
        if end > self.size {
            return None;
        }
        let mut out = Vec::new();
        out.try_reserve(len as usize).ok()?;
        out.extend((off..end).map(|i| self.data.get(i as usize).copied().unwrap_or(0)));
        Some(out)
    }
}

/// Whether `name` is a struct_ops map section.
pub fn is_struct_ops_section(name: &str) -> bool {
    name == STRUCT_OPS_SEC || name == STRUCT_OPS_LINK_SEC
}

/// A `struct_ops` error for map `map`, at `member` when there is one.
#[cold]
fn bad<'a>(sec: &'a str, map: &'a str, member: &'a str, expected: &'static str) -> ObjectError<'a> {
    err(
        sec,
        ObjectErrorKind::BadStructOps {
            map,
            member,
            expected,
        },
    )
}

impl<'a> Object<'a> {
    /// Phase 7: the struct_ops maps of `.struct_ops` and
    /// `.struct_ops.link`, with their members set to programs (the
    /// functions are known by now).
    pub(super) fn read_struct_ops(&mut self, elf: &Elf<'a>) -> PResult<'a, ()> {
        let mut out = Vec::new();
        for s in elf.sections() {
            let sname = s.name().unwrap_or("");
            if !is_struct_ops_section(sname) || s.size() == 0 {
                continue;
            }
            let btf = self.btf.as_ref().ok_or(ObjectError::new(
                Some(sname),
                ObjectErrorKind::MissingBtf {
                    needed_by: "struct_ops maps",
                    name: "",
                },
            ))?;
            let datasec = btf.find_by_name_kind(sname, Kind::Datasec).ok_or(bad(
                sname,
                "",
                "",
                "a DATASEC describing the section",
            ))?;
            let data = s.data().unwrap_or(&[]);
            let index = SectionIndex(s.index().0);
            let first = out.len();
            for e in btf.type_by_id(datasec)?.datasec_entries() {
                let var = btf.type_by_id(e.type_id)?;
                let name = btf.name(&var)?;
                if var.kind() != Kind::Var {
                    return Err(bad(sname, name, "", "a variable"));
                }
                let type_id = btf.skip_mods_and_typedefs(var.type_id())?;
                let t = btf.type_by_id(type_id)?;
                if t.kind() != Kind::Struct {
                    return Err(bad(sname, name, "", "a struct"));
                }
                // The symbol's offset (DATASEC offsets are fixed up from
                // symbols before libbpf reads them).
                let offset = self
                    .data_symbols
                    .iter()
                    .find(|d| d.section == sname && d.name == name)
                    .map_or(e.offset, |d| d.offset);
                let size = t.size();
                let start = (offset as usize).min(data.len());
                let end = (offset as usize)
                    .saturating_add(size as usize)
                    .min(data.len());
                try_push(
                    &mut out,
                    StructOps {
                        name,
                        section: sname,
                        section_index: index,
                        link: sname == STRUCT_OPS_LINK_SEC,
                        type_id,
                        type_name: btf.name(&t)?,
                        offset,
                        size,
                        data: data.get(start..end).unwrap_or(&[]),
                        progs: Vec::new(),
                    },
                )?;
            }
            for (off, r) in s.relocations() {
                let RelocationFlags::Elf { r_type } = r.flags() else {
                    continue;
                };
                let off = fit(off, sname, "relocation offset")?;
                let map = out
                    .iter_mut()
                    .skip(first)
                    .find(|m| off.checked_sub(m.offset).is_some_and(|d| d < m.size))
                    .ok_or(bad(
                        sname,
                        "",
                        "",
                        "relocations inside a struct_ops variable",
                    ))?;
                let (member, member_name) =
                    member_at(btf, map.type_id, off.saturating_sub(map.offset)).ok_or(bad(
                        sname,
                        map.name,
                        "",
                        "relocations at function-pointer members",
                    ))?;
                if r_type != R_BPF_64_ABS64 {
                    return Err(bad(
                        sname,
                        map.name,
                        member_name,
                        "an R_BPF_64_ABS64 relocation",
                    ));
                }
                let func = match r.target() {
                    RelocationTarget::Symbol(si) => elf.symbol_by_index(si).ok().and_then(|sym| {
                        let SymbolSection::Section(ts) = sym.section() else {
                            return None;
                        };
                        let ci = self.code_index(SectionIndex(ts.0))?;
                        let at = u32::try_from(sym.address() / INSN_SIZE_U64).ok()?;
                        self.function_starting_at(ci, SectionInsn(at))
                    }),
                    _ => None,
                };
                let is_struct_ops_prog = |f: FuncIndex| {
                    self.function(f).is_some_and(|f| {
                        f.is_program
                            && f.sec_def
                                .is_some_and(|d| d.prog_type == ProgType::STRUCT_OPS)
                    })
                };
                let func = func.filter(|&f| is_struct_ops_prog(f)).ok_or(bad(
                    sname,
                    map.name,
                    member_name,
                    "a program in a struct_ops/ section",
                ))?;
                try_push(
                    &mut map.progs,
                    StructOpsProg {
                        member,
                        member_name,
                        func,
                    },
                )?;
            }
            if let Some(maps) = out.get_mut(first..) {
                for m in maps {
                    crate::order::sort_by_key(&mut m.progs, |p| p.member);
                }
            }
        }
        self.struct_ops = out;
        Ok(())
    }
}

/// The function-pointer member of struct `st` at byte `off`: its index
/// and name.
fn member_at<'a>(btf: &Btf<'a>, st: TypeId, off: u32) -> Option<(u32, &'a str)> {
    let t = btf.type_by_id(st).ok()?;
    let bits = off.checked_mul(8)?;
    let (i, m) = t
        .members()
        .enumerate()
        .find(|(_, m)| m.bitfield_size == 0 && m.bit_offset == bits)?;
    is_func_ptr(btf, m.type_id).then_some(())?;
    let name = btf.str_at(m.name_off).ok()?;
    Some((u32::try_from(i).ok()?, name))
}

/// Whether `id` is a pointer to a function prototype (modifiers and
/// typedefs skipped on both levels).
pub fn is_func_ptr(btf: &Btf<'_>, id: TypeId) -> bool {
    let Some(p) = btf
        .skip_mods_and_typedefs(id)
        .ok()
        .and_then(|id| btf.type_by_id(id).ok())
    else {
        return false;
    };
    p.kind() == Kind::Ptr
        && btf
            .skip_mods_and_typedefs(p.type_id())
            .ok()
            .and_then(|id| btf.type_by_id(id).ok())
            .is_some_and(|f| f.kind() == Kind::FuncProto)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EL: &[u8] = include_bytes!("../../../tests/fixtures/struct_ops.bpf-el.o");
    const EB: &[u8] = include_bytes!("../../../tests/fixtures/struct_ops.bpf-eb.o");

    #[test]
    fn each_variable_is_a_map_with_its_members_programs() {
        for bytes in [EL, EB] {
            let obj = Object::parse(bytes, "struct_ops").unwrap();
            assert!(obj.check_invariants());
            let names: Vec<_> = obj.struct_ops.iter().map(|m| (m.name, m.link)).collect();
            assert_eq!(names, [("ember_link_ca", true), ("ember_map_ca", false)]);
            for m in &obj.struct_ops {
                assert_eq!(m.type_name, "tcp_congestion_ops");
                assert_eq!(m.size, 48);
                let progs: Vec<_> = m
                    .progs
                    .iter()
                    .map(|p| (p.member, p.member_name, obj.functions[p.func.index()].name))
                    .collect();
                assert_eq!(
                    progs,
                    [
                        (0, "ssthresh", "ember_ssthresh"),
                        (1, "cong_avoid", "ember_cong_avoid"),
                        (2, "undo_cwnd", "ember_undo_cwnd"),
                    ]
                );
                assert_eq!(m.prog_at(3), None);
                // `name` at 28: the section's bytes; past the end: None.
                let name = if m.link { "ember_test" } else { "ember_test2" };
                let got = m.bytes(28, 16).unwrap();
                assert_eq!(&got[..name.len()], name.as_bytes());
                assert!(got[name.len()..].iter().all(|&b| b == 0));
                assert_eq!(m.bytes(40, 16), None);
            }
        }
    }

    #[test]
    fn a_member_set_to_another_kind_of_program_is_refused_by_name() {
        for bytes in [
            include_bytes!("../../../tests/fixtures/bad/struct_ops_not_prog.bpf-el.o").as_slice(),
            include_bytes!("../../../tests/fixtures/bad/struct_ops_not_prog.bpf-eb.o").as_slice(),
        ] {
            let e = Object::parse(bytes, "struct_ops_not_prog").unwrap_err();
            assert_eq!(
                e.kind,
                ObjectErrorKind::BadStructOps {
                    map: "ember_not_prog",
                    member: "ssthresh",
                    expected: "a program in a struct_ops/ section",
                }
            );
            assert_eq!(e.section, Some(".struct_ops"));
        }
    }

    #[test]
    fn errors_name_the_map_and_member() {
        let obj = Object::parse(EL, "struct_ops").unwrap();
        assert!(obj.struct_ops[0].progs.len() == 3);
        let e = bad(".struct_ops.link", "ember_link_ca", "ssthresh", "x");
        let text = alloc::format!("{e}");
        assert_eq!(
            text,
            "section '.struct_ops.link': struct_ops map 'ember_link_ca' member 'ssthresh': expected x"
        );
    }
}
