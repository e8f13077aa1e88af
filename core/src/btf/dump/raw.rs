//! The raw listing, line for line as `bpftool btf dump file F` prints it.

use core::fmt::{self, Write};

use super::write_bytes;
use crate::btf::raw::{BTF_INT_BOOL, BTF_INT_CHAR, BTF_INT_SIGNED};
use crate::btf::{Btf, Kind, StrOffset, Type};

/// Writes every own type of `btf` (for split BTF, only the split part, as
/// bpftool does with `-B`).
///
/// # Errors
/// Only the writer's.
pub fn dump(btf: &Btf<'_>, out: &mut dyn Write) -> fmt::Result {
    for t in btf.types() {
        dump_type(btf, &t, out)?;
    }
    Ok(())
}

/// bpftool's `btf_str`: `(anon)` for offset 0, `(invalid)` when unresolvable.
fn name(btf: &Btf<'_>, off: StrOffset, out: &mut dyn Write) -> fmt::Result {
    if off.0 == 0 {
        return out.write_str("(anon)");
    }
    match btf.bytes_at(off) {
        Some(b) => write_bytes(out, b),
        None => out.write_str("(invalid)"),
    }
}

fn int_encoding(enc: u8) -> &'static str {
    match enc {
        0 => "(none)",
        BTF_INT_SIGNED => "SIGNED",
        BTF_INT_CHAR => "CHAR",
        BTF_INT_BOOL => "BOOL",
        _ => "UNKN",
    }
}

fn linkage(l: u32) -> &'static str {
    match l {
        0 => "static",
        1 => "global",
        2 => "extern",
        _ => "(unknown)",
    }
}

/// Writes one type as bpftool does, ending with a newline.
///
/// # Errors
/// Only the writer's.
pub fn dump_type(btf: &Btf<'_>, t: &Type<'_>, out: &mut dyn Write) -> fmt::Result {
    let kind = t.kind();
    write!(out, "[{}] {} '", t.id(), kind.name())?;
    name(btf, t.name_off(), out)?;
    out.write_char('\'')?;
    match kind {
        Kind::Int => {
            if let Some(i) = t.as_int() {
                write!(
                    out,
                    " size={} bits_offset={} nr_bits={} encoding={}",
                    t.size(),
                    i.offset(),
                    i.bits(),
                    int_encoding(i.encoding())
                )?;
            }
        }
        Kind::Ptr
        | Kind::Const
        | Kind::Volatile
        | Kind::Restrict
        | Kind::Typedef
        | Kind::TypeTag => {
            write!(out, " type_id={}", t.type_id())?;
        }
        Kind::Array => {
            if let Some(a) = t.as_array() {
                write!(
                    out,
                    " type_id={} index_type_id={} nr_elems={}",
                    a.elem_type, a.index_type, a.nelems
                )?;
            }
        }
        Kind::Struct | Kind::Union => {
            write!(out, " size={} vlen={}", t.size(), t.vlen())?;
            for m in t.members() {
                out.write_str("\n\t'")?;
                name(btf, m.name_off, out)?;
                write!(out, "' type_id={} bits_offset={}", m.type_id, m.bit_offset)?;
                if m.bitfield_size != 0 {
                    write!(out, " bitfield_size={}", m.bitfield_size)?;
                }
            }
        }
        Kind::Enum | Kind::Enum64 => {
            let signed = t.kflag();
            let enc = if signed { "SIGNED" } else { "UNSIGNED" };
            write!(out, " encoding={enc} size={} vlen={}", t.size(), t.vlen())?;
            for e in t.enumerators() {
                out.write_str("\n\t'")?;
                name(btf, e.name_off, out)?;
                match (kind, signed) {
                    (Kind::Enum, true) => write!(out, "' val={}", e.value as i64)?,
                    (Kind::Enum, false) => write!(out, "' val={}", e.value)?,
                    (_, true) => write!(out, "' val={}LL", e.value as i64)?,
                    (_, false) => write!(out, "' val={}ULL", e.value)?,
                }
            }
        }
        Kind::Fwd => {
            let k = if t.kflag() { "union" } else { "struct" };
            write!(out, " fwd_kind={k}")?;
        }
        Kind::Func => {
            write!(
                out,
                " type_id={} linkage={}",
                t.type_id(),
                linkage(t.vlen())
            )?;
        }
        Kind::FuncProto => {
            write!(out, " ret_type_id={} vlen={}", t.type_id(), t.vlen())?;
            for p in t.params() {
                out.write_str("\n\t'")?;
                name(btf, p.name_off, out)?;
                write!(out, "' type_id={}", p.type_id)?;
            }
        }
        Kind::Var => {
            let l = t.var_linkage().unwrap_or(0);
            write!(out, " type_id={}, linkage={}", t.type_id(), linkage(l))?;
        }
        Kind::Datasec => {
            write!(out, " size={} vlen={}", t.size(), t.vlen())?;
            for e in t.datasec_entries() {
                write!(
                    out,
                    "\n\ttype_id={} offset={} size={}",
                    e.type_id, e.offset, e.size
                )?;
                if let Some(v) = btf.get(e.type_id) {
                    write!(out, " ({} '", v.kind().name())?;
                    name(btf, v.name_off(), out)?;
                    out.write_str("')")?;
                }
            }
        }
        Kind::Float => write!(out, " size={}", t.size())?,
        Kind::DeclTag => {
            let c = t.decl_tag_component().unwrap_or(-1);
            write!(out, " type_id={} component_idx={c}", t.type_id())?;
        }
        _ => {}
    }
    out.write_char('\n')
}
