//! The object's BTF as the kernel will take it: DATASEC sizes and variable
//! offsets filled in from the ELF file (clang leaves them zero), extern
//! sections turned into something the kernel accepts, and kinds the running
//! kernel predates rewritten into older ones of the same record size, so
//! every type id stays valid (SPEC-CORE §6).

use alloc::vec::Vec;

use crate::btf::raw::*;
use crate::btf::{Btf, Kind, TypeId};
use crate::bytes::Endian;
use crate::error::{Error, ErrorKind, Result};
use crate::object::{ExternKind, Object};

/// What the kernel's BTF loader understands (one probe each; see
/// SPEC-CORE §6). `Default` is a kernel that knows everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BtfFeatures {
    /// FUNC and FUNC_PROTO (4.20+).
    pub func: bool,
    /// FUNC with global linkage (5.6+).
    pub global_func: bool,
    /// VAR and DATASEC (5.2+).
    pub datasec: bool,
    /// DATASEC names starting with `?` (5.19+).
    pub qmark_datasec: bool,
    /// FLOAT (5.13+).
    pub float: bool,
    /// DECL_TAG (5.16+).
    pub decl_tag: bool,
    /// TYPE_TAG (5.17+).
    pub type_tag: bool,
    /// ENUM64 and signed enums (6.0+).
    pub enum64: bool,
}

impl BtfFeatures {
    /// A kernel with BTF but none of the optional kinds (4.18-era).
    pub const NONE: BtfFeatures = BtfFeatures {
        func: false,
        global_func: false,
        datasec: false,
        qmark_datasec: false,
        float: false,
        decl_tag: false,
        type_tag: false,
        enum64: false,
    };
}

impl Default for BtfFeatures {
    fn default() -> Self {
        BtfFeatures {
            func: true,
            global_func: true,
            datasec: true,
            qmark_datasec: true,
            float: true,
            decl_tag: true,
            type_tag: true,
            enum64: true,
        }
    }
}

fn bad_layout(at: usize) -> Error {
    Error::new(ErrorKind::OutOfMemory, at)
}

fn get(b: &[u8], off: usize) -> u32 {
    b.get(off..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map_or(0, |w| u32::from_ne_bytes(*w))
}

fn set(b: &mut [u8], off: usize, v: u32) {
    if let Some(w) = b.get_mut(off..off.saturating_add(4)) {
        w.copy_from_slice(&v.to_ne_bytes());
    }
}

fn info(kind: u8, kflag: bool, vlen: u32) -> u32 {
    (u32::from(kind) << 24) | (u32::from(kflag) << 31) | (vlen & 0xffff)
}

/// Gives the record at `at` a new kind and vlen (kflag cleared).
fn retype(b: &mut [u8], at: usize, kind: u8, vlen: u32) {
    set(b, at.saturating_add(4), info(kind, false, vlen));
}

/// Turns a 16-byte record (VAR, DECL_TAG) into a 1-byte, 8-bit INT.
fn byte_int(b: &mut [u8], at: usize) {
    retype(b, at, BTF_KIND_INT, 0);
    set(b, at.saturating_add(8), 1);
    set(b, at.saturating_add(12), 8);
}

/// Types and strings being rewritten, in native byte order.
struct Edit<'b> {
    btf: &'b Btf<'b>,
    types: Vec<u8>,
    /// Start of the type section in `btf.data()`.
    base: usize,
    strs: Vec<u8>,
    /// Records appended after the object's own types.
    extra: Vec<u8>,
    /// The appended `dummy_ksym` VAR and its name offset.
    dummy: Option<(TypeId, u32)>,
    next_id: u32,
}

impl<'b> Edit<'b> {
    /// Offset of `id`'s record in `types`.
    fn at(&self, id: TypeId) -> Option<usize> {
        if id < self.btf.start_id() || id.0 >= self.btf.type_count() {
            return None;
        }
        self.btf.record_offset(id).checked_sub(self.base)
    }

    fn add_str(&mut self, s: &str) -> Result<u32> {
        let off = len32(self.strs.len(), "BTF string bytes")?;
        self.strs
            .try_reserve(s.len().saturating_add(1))
            .map_err(|_| bad_layout(0))?;
        self.strs.extend_from_slice(s.as_bytes());
        self.strs.push(0);
        Ok(off)
    }

    fn add_type(&mut self, words: &[u32]) -> Result<TypeId> {
        self.extra
            .try_reserve(words.len().saturating_mul(4))
            .map_err(|_| bad_layout(0))?;
        for w in words {
            self.extra.extend_from_slice(&w.to_ne_bytes());
        }
        let id = TypeId(self.next_id);
        self.next_id = self.next_id.saturating_add(1);
        Ok(id)
    }

    /// Replaces `.` and `?` in the string at `off` by `_`, in place.
    fn sanitize_name(&mut self, off: u32, all: bool) {
        let start = off as usize;
        let Some(tail) = self.strs.get_mut(start..) else {
            return;
        };
        for (i, c) in tail.iter_mut().enumerate() {
            match *c {
                0 => break,
                b'?' if all || i == 0 => *c = b'_',
                b'.' if all => *c = b'_',
                _ => {}
            }
        }
    }
}

/// The object's BTF, fixed up and rewritten for a kernel with `feat`.
///
/// # Errors
/// [`ErrorKind::MissingBtf`] without `.BTF`; [`ErrorKind::ForeignEndian`]
/// when the object's byte order is not this machine's;
/// [`ErrorKind::UnsanitizableKind`] for a kind newer than ENUM64.
pub fn kernel_btf(obj: &Object<'_>, feat: &BtfFeatures) -> Result<Vec<u8>> {
    let btf = obj
        .btf
        .as_ref()
        .ok_or(Error::new(ErrorKind::MissingBtf, 0))?;
    if btf.endian() != Endian::NATIVE {
        return Err(Error::new(ErrorKind::ForeignEndian, 0));
    }
    let (base, len) = btf.type_section();
    let types = btf
        .data()
        .get(base..base.saturating_add(len))
        .ok_or(bad_layout(base))?;
    let mut ed = Edit {
        btf,
        types: Vec::new(),
        base,
        strs: Vec::new(),
        extra: Vec::new(),
        dummy: None,
        next_id: btf.type_count(),
    };
    ed.types.try_reserve(len).map_err(|_| bad_layout(0))?;
    ed.types.extend_from_slice(types);
    ed.strs
        .try_reserve(btf.strings().len())
        .map_err(|_| bad_layout(0))?;
    ed.strs.extend_from_slice(btf.strings());

    fix_datasecs(&mut ed, obj, feat.datasec)?;
    // `__hidden` functions are verified with their callers, as statics.
    // Only a FUNC is retyped: func_info may name any type, and turning
    // another kind into a FUNC makes BTF the kernel (and we) refuse.
    for f in obj.functions.iter().filter(|f| f.hidden) {
        let func = f
            .btf_func
            .filter(|&id| btf.get(id).is_some_and(|t| t.kind() == Kind::Func));
        if let Some(at) = func.and_then(|id| ed.at(id)) {
            retype(&mut ed.types, at, BTF_KIND_FUNC, LINKAGE_STATIC);
        }
    }
    sanitize(&mut ed, feat)?;

    let type_len = len32(
        ed.types.len().saturating_add(ed.extra.len()),
        "BTF type bytes",
    )?;
    let str_len = len32(ed.strs.len(), "BTF string bytes")?;
    let mut out = Vec::new();
    out.try_reserve(
        24usize
            .saturating_add(type_len as usize)
            .saturating_add(ed.strs.len()),
    )
    .map_err(|_| bad_layout(0))?;
    out.extend_from_slice(&BTF_MAGIC.to_ne_bytes());
    out.extend_from_slice(&[BTF_VERSION, 0]);
    for w in [HEADER_LEN_V1, 0, type_len, type_len, str_len] {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    out.extend_from_slice(&ed.types);
    out.extend_from_slice(&ed.extra);
    out.extend_from_slice(&ed.strs);
    Ok(out)
}

/// A 4-byte signed `int` of the object, or a new one.
fn int_type(ed: &mut Edit<'_>) -> Result<TypeId> {
    let found = ed.btf.types().find(|t| {
        t.kind() == Kind::Int && t.size() == 4 && t.as_int().is_some_and(|i| i.bits() == 32)
    });
    if let Some(t) = found {
        return Ok(t.id());
    }
    let name = ed.add_str("int")?;
    ed.add_type(&[
        name,
        info(BTF_KIND_INT, false, 0),
        4,
        (u32::from(BTF_INT_SIGNED) << 24) | 32,
    ])
}

/// Names the unnamed parameters of FUNC_PROTO `proto` `arg`.
fn name_params(ed: &mut Edit<'_>, proto: TypeId, name: &mut Option<u32>) -> Result<()> {
    let Some(p) = ed.btf.get(proto).filter(|p| p.kind() == Kind::FuncProto) else {
        return Ok(());
    };
    let Some(at) = ed.at(proto) else {
        return Ok(());
    };
    for (i, param) in p.params().enumerate() {
        if param.name_off.0 != 0 || param.type_id == TypeId::VOID {
            continue;
        }
        let n = match *name {
            Some(n) => n,
            None => *name.insert(ed.add_str("arg")?),
        };
        set(
            &mut ed.types,
            at.saturating_add(12).saturating_add(i.saturating_mul(8)),
            n,
        );
    }
    Ok(())
}

/// Fills DATASEC sizes and offsets; makes extern sections loadable.
fn fix_datasecs(ed: &mut Edit<'_>, obj: &Object<'_>, datasec: bool) -> Result<()> {
    let btf = ed.btf;
    let mut int_id = None;
    let mut dummy_var = None;
    let mut arg_name = None;
    for t in btf.types() {
        if t.kind() != Kind::Datasec {
            continue;
        }
        let name = btf.name(&t)?;
        let Some(at) = ed.at(t.id()) else { continue };
        let mut entries: Vec<(u32, u32, u32)> = Vec::new();
        entries
            .try_reserve(t.vlen() as usize)
            .map_err(|_| bad_layout(at))?;
        let size;
        if name == ".ksyms" {
            // The kernel takes neither FUNC entries nor extern VARs: every
            // entry becomes an allocated `int` VAR at its own offset.
            let int = match int_id {
                Some(i) => i,
                None => *int_id.insert(int_type(ed)?),
            };
            let mut off = 0u32;
            for e in t.datasec_entries() {
                let v = btf.type_by_id(e.type_id)?;
                let var = if v.kind() == Kind::Func {
                    if let Some(va) = ed.at(v.id()) {
                        set(
                            &mut ed.types,
                            va.saturating_add(4),
                            info(BTF_KIND_FUNC, false, LINKAGE_GLOBAL),
                        );
                    }
                    // A non-extern FUNC needs named parameters; kfunc
                    // declarations often have none.
                    name_params(ed, v.type_id(), &mut arg_name)?;
                    match dummy_var {
                        Some(d) => d,
                        None => {
                            let n = ed.add_str("dummy_ksym")?;
                            // Without DATASEC support it is born as the
                            // 1-byte INT every VAR becomes.
                            let rec = if datasec {
                                [n, info(BTF_KIND_VAR, false, 0), int.0, LINKAGE_GLOBAL]
                            } else {
                                [n, info(BTF_KIND_INT, false, 0), 1, 8]
                            };
                            let d = ed.add_type(&rec)?;
                            ed.dummy = Some((d, n));
                            *dummy_var.insert(d)
                        }
                    }
                } else {
                    if let Some(va) = ed.at(v.id()) {
                        set(&mut ed.types, va.saturating_add(8), int.0);
                        set(&mut ed.types, va.saturating_add(12), LINKAGE_GLOBAL);
                    }
                    v.id()
                };
                entries.push((var.0, off, 4));
                off = off.saturating_add(4);
            }
            size = off;
        } else if name == ".kconfig" {
            let mut end = 0u32;
            for e in t.datasec_entries() {
                let v = btf.type_by_id(e.type_id)?;
                let vname = btf.name(&v)?;
                let place = obj.externs.iter().find_map(|x| match x.kind {
                    ExternKind::Kconfig { offset, size } if x.name == vname => Some((offset, size)),
                    _ => None,
                });
                let (off, sz) = place.ok_or(Error::new(ErrorKind::VarWithoutSymbol(v.id()), at))?;
                if let Some(va) = ed.at(v.id()) {
                    set(&mut ed.types, va.saturating_add(12), LINKAGE_GLOBAL);
                }
                entries.push((v.id().0, off, sz));
                end = end.max(off.saturating_add(sz));
            }
            size = end;
        } else {
            size = obj
                .sections
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(t.size(), |&(_, s)| s);
            for e in t.datasec_entries() {
                let v = btf.type_by_id(e.type_id)?;
                let vname = btf.name(&v)?;
                let sym = obj
                    .data_symbols
                    .iter()
                    .find(|s| s.section == name && s.name == vname);
                // The linkage word exists only in a VAR's record.
                let var = (v.kind() == Kind::Var).then(|| ed.at(v.id())).flatten();
                if let (Some(va), Some(true)) = (var, sym.map(|s| s.hidden)) {
                    set(&mut ed.types, va.saturating_add(12), LINKAGE_STATIC);
                }
                let off = sym
                    .ok_or(Error::new(ErrorKind::VarWithoutSymbol(v.id()), at))?
                    .offset;
                entries.push((e.type_id.0, off, e.size));
            }
        }
        // The kernel wants entries inside the section, in increasing,
        // non-overlapping order.
        if let Some(&(ty, ..)) = entries
            .iter()
            .find(|&&(_, off, sz)| off.checked_add(sz).is_none_or(|e| e > size))
        {
            return Err(Error::new(ErrorKind::VarOutOfSection(TypeId(ty)), at));
        }
        crate::order::sort_by_key(&mut entries, |&(_, off, _)| off);
        if let Some(w) = entries
            .windows(2)
            .find(|w| matches!(w, [a, b] if b.1 < a.1.saturating_add(a.2)))
        {
            let ty = w.get(1).map_or(0, |b| b.0);
            return Err(Error::new(ErrorKind::VarsOverlap(TypeId(ty)), at));
        }
        set(&mut ed.types, at.saturating_add(8), size);
        for (i, (ty, off, sz)) in entries.into_iter().enumerate() {
            let e = at.saturating_add(12).saturating_add(i.saturating_mul(12));
            set(&mut ed.types, e, ty);
            set(&mut ed.types, e.saturating_add(4), off);
            set(&mut ed.types, e.saturating_add(8), sz);
        }
    }
    Ok(())
}

/// Rewrites kinds the kernel lacks into older kinds of the same size.
fn sanitize(ed: &mut Edit<'_>, feat: &BtfFeatures) -> Result<()> {
    if *feat == BtfFeatures::default() {
        return Ok(());
    }
    let btf = ed.btf;
    let mut placeholder = None;
    let mut arg_name = None;
    for t in btf.types() {
        let Some(at) = ed.at(t.id()) else { continue };
        let vlen = t.vlen();
        let name_off = t.name_off().0;
        match t.kind() {
            Kind::Var if !feat.datasec => {
                byte_int(&mut ed.types, at);
            }
            Kind::Datasec if !feat.datasec => {
                // Members: the VAR's name and id (now a 1-byte INT), at the
                // entry's offset in bits.
                retype(&mut ed.types, at, BTF_KIND_STRUCT, vlen);
                for i in 0..vlen as usize {
                    let e = at.saturating_add(12).saturating_add(i.saturating_mul(12));
                    let ty = get(&ed.types, e);
                    let off = get(&ed.types, e.saturating_add(4));
                    let var_name = match ed.dummy {
                        Some((d, n)) if d.0 == ty => n,
                        _ => btf.get(TypeId(ty)).map_or(0, |v| v.name_off().0),
                    };
                    set(&mut ed.types, e, var_name);
                    set(&mut ed.types, e.saturating_add(4), ty);
                    set(&mut ed.types, e.saturating_add(8), off.saturating_mul(8));
                }
                ed.sanitize_name(name_off, true);
            }
            Kind::Datasec if !feat.qmark_datasec => ed.sanitize_name(name_off, false),
            Kind::DeclTag if !feat.decl_tag => {
                set(&mut ed.types, at, 0);
                byte_int(&mut ed.types, at);
            }
            Kind::FuncProto if !feat.func => {
                // Enumerators need names where parameters may have none.
                name_params(ed, t.id(), &mut arg_name)?;
                retype(&mut ed.types, at, BTF_KIND_ENUM, vlen);
                set(&mut ed.types, at.saturating_add(8), 4);
            }
            Kind::Func if !feat.func => {
                retype(&mut ed.types, at, BTF_KIND_TYPEDEF, 0);
            }
            Kind::Func if !feat.global_func => {
                retype(&mut ed.types, at, BTF_KIND_FUNC, LINKAGE_STATIC);
            }
            Kind::Float if !feat.float => {
                set(&mut ed.types, at, 0);
                retype(&mut ed.types, at, BTF_KIND_STRUCT, 0);
            }
            Kind::TypeTag if !feat.type_tag => {
                set(&mut ed.types, at, 0);
                retype(&mut ed.types, at, BTF_KIND_CONST, 0);
            }
            Kind::Enum if !feat.enum64 => {
                retype(&mut ed.types, at, BTF_KIND_ENUM, vlen);
            }
            Kind::Enum64 if !feat.enum64 => {
                let ph = match placeholder {
                    Some(p) => p,
                    None => {
                        let n = ed.add_str("enum64_placeholder")?;
                        let p = ed.add_type(&[n, info(BTF_KIND_INT, false, 0), 1, 8])?;
                        *placeholder.insert(p)
                    }
                };
                retype(&mut ed.types, at, BTF_KIND_UNION, vlen);
                for i in 0..vlen as usize {
                    let e = at.saturating_add(12).saturating_add(i.saturating_mul(12));
                    set(&mut ed.types, e.saturating_add(4), ph.0);
                    set(&mut ed.types, e.saturating_add(8), 0);
                }
            }
            Kind::Unknown => {
                return Err(Error::new(ErrorKind::UnsanitizableKind(t.raw_kind()), at));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A length of the BTF being written, which its header gives in 32 bits.
fn len32(n: usize, what: &'static str) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::new(ErrorKind::TooMany(what), 0))
}
