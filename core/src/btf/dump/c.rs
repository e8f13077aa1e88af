//! The C header writer: `vmlinux.h` as `bpftool btf dump file F format c`
//! prints it. The reference is Debian bookworm's bpftool 7.1, built from
//! Linux 6.1.y, whose libbpf (1.1 plus stable backports) has the reworked
//! padding, packed-struct and alignment logic of libbpf 1.2 but nothing
//! later: no `__ksym`/kfunc section, no raw type-tag attributes.
//!
//! Two passes per type id, as in libbpf:
//! 1. *Ordering*: a depth-first walk that queues every type needing a
//!    top-level definition after the types it embeds. A step answers
//!    "strong" (the dependency must be fully defined first) or "weak" (a
//!    forward declaration will do: a named struct behind a pointer).
//! 2. *Emission*: each queued type is written, after any forward
//!    declarations its members need; anonymous structs, unions and enums
//!    are written inline where they are used.
//!
//! Names are made unique on first use: the second `struct foo` becomes
//! `foo___2`. Struct/union/enum tags and typedef/enumerator identifiers
//! count separately; forward declarations and empty enums keep their names.
//!
//! One deliberate difference from bpftool 7.1: 1-byte enums, and 8-byte
//! enums whose values all fit in 32 bits, get `__attribute__((mode(byte)))`
//! or `mode(word)` as in later libbpf. Without them the compiler makes such
//! enums 4 bytes, and structs embedding them (`struct inode` on 6.x kernels,
//! for one) come out with the wrong layout.
//!
//! Every walk is depth-limited and the whole dump has a work budget
//! proportional to the input, so crafted BTF (cycles, exponential nesting,
//! gigabyte padding gaps) ends in a [`DumpError`] instead of a stack
//! overflow or an endless run. Real kernels use a few percent of it.

use alloc::vec::Vec;
use core::fmt::{self, Write};

use hashbrown::HashTable;

use super::write_bytes;
use crate::btf::{Btf, Kind, Type, TypeId};
use crate::error::{Error, ErrorKind};

/// Why a C dump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DumpError {
    /// The writer failed (for an `io` sink, the caller holds the cause).
    Fmt,
    /// The BTF has no C form: a kind C cannot express, an unsatisfiable
    /// type cycle, or nesting past the depth limit. The error names the
    /// type and its record's byte offset when the type is this BTF's own.
    Btf(Error),
    /// Writing this type would pass the work limit, which is proportional
    /// to the input: the BTF nests types exponentially or declares a padding
    /// gap of gigabytes. Real kernels stay far below it.
    TooLarge(TypeId),
}

impl From<fmt::Error> for DumpError {
    fn from(_: fmt::Error) -> Self {
        DumpError::Fmt
    }
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::Fmt => f.write_str("writing the C header failed"),
            DumpError::Btf(_) => f.write_str("cannot write BTF as C"),
            DumpError::TooLarge(id) => {
                write!(f, "C header for type [{id}] would pass the work limit")
            }
        }
    }
}

impl core::error::Error for DumpError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            DumpError::Fmt | DumpError::TooLarge(_) => None,
            DumpError::Btf(e) => Some(e),
        }
    }
}

type Res<T = ()> = Result<T, DumpError>;

const HEADER: &str = "#ifndef __VMLINUX_H__\n\
#define __VMLINUX_H__\n\
\n\
#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n\
#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n\
#endif\n\
\n";

const TRAILER: &str = "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n\
#pragma clang attribute pop\n\
#endif\n\
\n\
#endif /* __VMLINUX_H__ */\n";

/// Writes `btf` as a C header, every type from id 1 on (for split BTF the
/// base's types too, as bpftool does with `-B`).
///
/// # Errors
/// [`DumpError::Fmt`] when `out` fails; [`DumpError::Btf`] when the BTF
/// cannot be written as C; [`DumpError::TooLarge`] past the work limit.
/// Nothing is written when the problem is found before the first type (an
/// unknown kind); otherwise the output stops at the type at fault, without
/// the trailer, as bpftool's does.
pub fn dump(btf: &Btf<'_>, out: &mut dyn Write) -> Result<(), DumpError> {
    let mut d = CDump::new(btf, out)?;
    d.out.write_str(HEADER)?;
    for id in 1..btf.type_count() {
        d.dump_root(id)?;
    }
    d.out.write_str(TRAILER)?;
    Ok(())
}

/// Deepest recursion of any walk (libbpf has none). A 6.x vmlinux needs
/// about 20.
const MAX_DEPTH: u32 = 256;

/// Work budget per type and per member/enumerator/parameter ...
const WORK_PER_EDGE: u64 = 32;
/// ... plus this much, so that small blobs get room too.
const WORK_MIN: u64 = 1 << 16;

/// Longest modifier/pointer/array chain in one declarator.
const MAX_DECL_CHAIN: usize = 1024;

/// `pfx()` in libbpf: indentation stops growing at 13 tabs.
const TABS: &str = "\t\t\t\t\t\t\t\t\t\t\t\t\t";

/// libbpf formats renamed types into a 256-byte buffer.
const MAX_RENAMED_LEN: usize = 255;

// Per-type state bits.
const ORDER_MASK: u8 = 0b11;
const ORDERING: u8 = 1;
const ORDERED: u8 = 2;
const EMIT_SHIFT: u8 = 2;
const EMIT_MASK: u8 = 0b11 << EMIT_SHIFT;
const EMITTING: u8 = 1;
const EMITTED: u8 = 2;
const FWD_EMITTED: u8 = 1 << 4;
const NAME_RESOLVED: u8 = 1 << 5;
const REFERENCED: u8 = 1 << 6;

/// Alignment memo value for "not computed yet".
const ALIGN_UNKNOWN: u8 = u8::MAX;

/// Width of the narrowest padding type.
const CHAR_BITS: i64 = 8;

/// A name as printed: the BTF string plus an optional `___N` suffix.
#[derive(Clone, Copy)]
struct Ident<'a> {
    name: &'a [u8],
    /// Occurrence number; 0 or 1 means "no suffix".
    dup: u32,
}

impl<'a> Ident<'a> {
    const EMPTY: Ident<'static> = Ident { name: b"", dup: 0 };

    fn plain(name: &'a [u8]) -> Self {
        Ident { name, dup: 0 }
    }

    fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
}

/// Name → occurrence count, keyed by the string-table bytes.
#[derive(Default)]
struct NameCounts<'a> {
    table: HashTable<(&'a [u8], u32)>,
}

fn name_hash(name: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (name.len() as u64).wrapping_mul(K);
    for c in name.chunks(8) {
        let mut w = [0u8; 8];
        for (d, s) in w.iter_mut().zip(c) {
            *d = *s;
        }
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h ^ (h >> 31)
}

impl<'a> NameCounts<'a> {
    /// Counts one more occurrence of `name` and returns the new count.
    fn bump(&mut self, name: &'a [u8]) -> u32 {
        let h = name_hash(name);
        if let Some(e) = self.table.find_mut(h, |e| e.0 == name) {
            e.1 = e.1.saturating_add(1);
            return e.1;
        }
        self.table.insert_unique(h, (name, 1), |e| name_hash(e.0));
        1
    }
}

/// A window of the shared declarator stack: `stack[base..base + cnt]`,
/// popped from the top. Nested declarators push above the whole window.
struct View {
    base: usize,
    cnt: usize,
}

/// One dump in progress: the per-type tables and the output.
struct CDump<'a, 'b> {
    btf: &'b Btf<'a>,
    out: &'b mut dyn Write,
    ptr_size: u32,
    /// Order/emit state and flags per type id.
    state: Vec<u8>,
    /// `___N` suffix per type id (0: none).
    dup: Vec<u32>,
    /// Alignment per type id, memoized.
    align: Vec<u8>,
    /// Struct/union/enum/fwd tags.
    type_names: NameCounts<'a>,
    /// Typedef names and enumerators.
    ident_names: NameCounts<'a>,
    /// Types to define, in order, for the current root.
    queue: Vec<u32>,
    /// Declarator chains (see [`View`]).
    decl: Vec<u32>,
    /// Work left before the dump is declared runaway.
    budget: u64,
}

impl<'a, 'b> CDump<'a, 'b> {
    fn new(btf: &'b Btf<'a>, out: &'b mut dyn Write) -> Res<Self> {
        let count = btf.type_count() as usize;
        let mut d = CDump {
            btf,
            out,
            ptr_size: btf.pointer_size(),
            state: alloc_table(count, 0u8)?,
            dup: alloc_table(count, 0u32)?,
            align: alloc_table(count, ALIGN_UNKNOWN)?,
            type_names: NameCounts::default(),
            ident_names: NameCounts::default(),
            queue: Vec::new(),
            decl: Vec::new(),
            budget: 0,
        };
        // Void is always defined.
        if let Some(s) = d.state.get_mut(0) {
            *s = ORDERED | (EMITTED << EMIT_SHIFT);
        }
        let mut edges: u64 = 0;
        for i in 1..btf.type_count() {
            let t = d.ty(i)?;
            edges = edges.saturating_add(u64::from(t.vlen())).saturating_add(1);
            d.mark_referenced(&t)?;
        }
        // A 6.x vmlinux takes under 3 steps (walk calls and padding lines)
        // per edge; far more means exponential nesting or a huge padding
        // gap in a crafted blob.
        d.budget = edges.saturating_mul(WORK_PER_EDGE).saturating_add(WORK_MIN);
        Ok(d)
    }

    // ---- small helpers ----

    fn err(&self, kind: ErrorKind, id: u32) -> DumpError {
        let off = if id >= self.btf.start_id().0 {
            self.btf.record_offset(TypeId(id))
        } else {
            0
        };
        DumpError::Btf(Error::new(kind, off))
    }

    fn ty(&self, id: u32) -> Res<Type<'a>> {
        self.btf
            .get(TypeId(id))
            .ok_or_else(|| self.err(ErrorKind::BadTypeId(TypeId(id)), 0))
    }

    /// Kind of `id`, `None` for void.
    fn kind_of(&self, id: u32) -> Res<Option<Kind>> {
        if id == 0 {
            return Ok(None);
        }
        Ok(Some(self.ty(id)?.kind()))
    }

    /// A depth check for recursive walks, and one unit of work.
    fn step(&mut self, id: u32, depth: u32) -> Res {
        if depth > MAX_DEPTH {
            return Err(self.err(ErrorKind::TypeChainTooDeep(TypeId(id)), id));
        }
        self.spend(id)
    }

    fn spend(&mut self, id: u32) -> Res {
        self.budget = self
            .budget
            .checked_sub(1)
            .ok_or(DumpError::TooLarge(TypeId(id)))?;
        Ok(())
    }

    fn flags(&self, id: u32) -> u8 {
        self.state.get(id as usize).copied().unwrap_or(0)
    }

    fn set_flag(&mut self, id: u32, flag: u8) {
        if let Some(s) = self.state.get_mut(id as usize) {
            *s |= flag;
        }
    }

    fn order_state(&self, id: u32) -> u8 {
        self.flags(id) & ORDER_MASK
    }

    fn set_order(&mut self, id: u32, v: u8) {
        if let Some(s) = self.state.get_mut(id as usize) {
            *s = (*s & !ORDER_MASK) | v;
        }
    }

    fn emit_state(&self, id: u32) -> u8 {
        (self.flags(id) & EMIT_MASK) >> EMIT_SHIFT
    }

    fn set_emit(&mut self, id: u32, v: u8) {
        if let Some(s) = self.state.get_mut(id as usize) {
            *s = (*s & !EMIT_MASK) | (v << EMIT_SHIFT);
        }
    }

    fn raw_name(&self, t: &Type<'_>) -> &'a [u8] {
        self.btf.bytes_at(t.name_off()).unwrap_or(b"")
    }

    fn w(&mut self, s: &str) -> Res {
        Ok(self.out.write_str(s)?)
    }

    fn wb(&mut self, b: &[u8]) -> Res {
        Ok(write_bytes(self.out, b)?)
    }

    fn pfx(&mut self, lvl: u32) -> Res {
        let n = (lvl as usize).min(TABS.len());
        self.w(TABS.get(..n).unwrap_or(TABS))
    }

    fn write_ident(&mut self, id: Ident<'_>) -> Res {
        if id.dup <= 1 {
            return self.wb(id.name);
        }
        let mut digits = [0u8; 10];
        let n = fmt_u32(id.dup, &mut digits);
        let suffix = digits.get(..n).unwrap_or(&[]);
        let full = id.name.len().saturating_add(3).saturating_add(n);
        if full <= MAX_RENAMED_LEN {
            self.wb(id.name)?;
            self.w("___")?;
            return self.wb(suffix);
        }
        // Cut as snprintf into libbpf's buffer would.
        let mut buf = [0u8; MAX_RENAMED_LEN];
        let mut len = 0usize;
        for (d, s) in buf
            .iter_mut()
            .zip(id.name.iter().chain(b"___".iter()).chain(suffix.iter()))
        {
            *d = *s;
            len = len.saturating_add(1);
        }
        self.wb(buf.get(..len).unwrap_or(&[]))
    }

    // ---- names ----

    /// libbpf's `btf_dump_resolve_name`: the first request for a type's
    /// name fixes its suffix.
    fn resolve_name(&mut self, id: u32, idents: bool) -> Res<Ident<'a>> {
        let t = self.ty(id)?;
        if t.name_off().0 == 0 {
            return Ok(Ident::EMPTY);
        }
        let name = self.raw_name(&t);
        if self.flags(id) & NAME_RESOLVED != 0 {
            let dup = self.dup.get(id as usize).copied().unwrap_or(0);
            return Ok(Ident { name, dup });
        }
        self.set_flag(id, NAME_RESOLVED);
        // A forward declaration names the same type as its definition.
        if t.kind() == Kind::Fwd || (t.kind() == Kind::Enum && t.vlen() == 0) {
            return Ok(Ident::plain(name));
        }
        let map = if idents {
            &mut self.ident_names
        } else {
            &mut self.type_names
        };
        let dup = map.bump(name);
        if dup > 1 {
            if let Some(s) = self.dup.get_mut(id as usize) {
                *s = dup;
            }
        }
        Ok(Ident { name, dup })
    }

    fn type_name(&mut self, id: u32) -> Res<Ident<'a>> {
        self.resolve_name(id, false)
    }

    fn ident_name(&mut self, id: u32) -> Res<Ident<'a>> {
        self.resolve_name(id, true)
    }

    // ---- pre-pass ----

    fn mark(&mut self, id: TypeId) {
        self.set_flag(id.0, REFERENCED);
    }

    fn mark_referenced(&mut self, t: &Type<'a>) -> Res {
        match t.kind() {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Fwd | Kind::Float => {}
            Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::Ptr
            | Kind::Typedef
            | Kind::Func
            | Kind::Var
            | Kind::DeclTag
            | Kind::TypeTag => self.mark(t.type_id()),
            Kind::Array => {
                if let Some(a) = t.as_array() {
                    self.mark(a.index_type);
                    self.mark(a.elem_type);
                }
            }
            Kind::Struct | Kind::Union => {
                for m in t.members() {
                    self.mark(m.type_id);
                }
            }
            // The return type does not count, as in libbpf: an anonymous
            // enum only used as a return type is dumped standalone.
            Kind::FuncProto => {
                for p in t.params() {
                    self.mark(p.type_id);
                }
            }
            Kind::Datasec => {
                for e in t.datasec_entries() {
                    self.mark(e.type_id);
                }
            }
            _ => {
                return Err(self.err(ErrorKind::UnknownKind(t.raw_kind()), t.id().0));
            }
        }
        Ok(())
    }

    // ---- ordering ----

    fn dump_root(&mut self, id: u32) -> Res {
        self.queue.clear();
        self.order(id, false, 0)?;
        let queue = core::mem::take(&mut self.queue);
        for &q in &queue {
            self.emit_type(q, 0, 0)?;
        }
        self.queue = queue;
        Ok(())
    }

    fn enqueue(&mut self, id: u32) -> Res {
        self.queue
            .try_reserve(1)
            .map_err(|_| self.err(ErrorKind::OutOfMemory, id))?;
        self.queue.push(id);
        Ok(())
    }

    /// Queues `id`'s dependencies, then `id` if it needs a definition;
    /// `Ok(true)` when the link to it is strong.
    fn order(&mut self, id: u32, through_ptr: bool, depth: u32) -> Res<bool> {
        self.step(id, depth)?;
        let state = self.order_state(id);
        if state == ORDERED {
            return Ok(true);
        }
        let t = self.ty(id)?;
        let named = t.name_off().0 != 0;
        if state == ORDERING {
            // A loop is fine only through a pointer to a named composite,
            // which a forward declaration breaks.
            if t.kind().is_composite() && through_ptr && named {
                return Ok(false);
            }
            return Err(self.err(ErrorKind::TypeChainTooDeep(TypeId(id)), id));
        }
        let next = depth.saturating_add(1);
        match t.kind() {
            Kind::Int | Kind::Float => {
                self.set_order(id, ORDERED);
                Ok(false)
            }
            Kind::Ptr => {
                let r = self.order(t.type_id().0, true, next)?;
                self.set_order(id, ORDERED);
                Ok(r)
            }
            Kind::Array => {
                let elem = t.as_array().map_or(0, |a| a.elem_type.0);
                self.order(elem, false, next)
            }
            Kind::Struct | Kind::Union => {
                if through_ptr && named {
                    return Ok(false);
                }
                self.set_order(id, ORDERING);
                for m in t.members() {
                    self.order(m.type_id.0, false, next)?;
                }
                if named {
                    self.enqueue(id)?;
                }
                self.set_order(id, ORDERED);
                Ok(true)
            }
            Kind::Enum | Kind::Enum64 | Kind::Fwd => {
                // Named ones are top-level definitions; so are anonymous
                // enums nobody references (constant blocks).
                if named || self.flags(id) & REFERENCED == 0 {
                    self.enqueue(id)?;
                }
                self.set_order(id, ORDERED);
                Ok(true)
            }
            Kind::Typedef => {
                let strong = self.order(t.type_id().0, through_ptr, next)?;
                if through_ptr && !strong {
                    return Ok(false);
                }
                self.enqueue(id)?;
                self.set_order(id, ORDERED);
                Ok(true)
            }
            Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.order(t.type_id().0, through_ptr, next)
            }
            Kind::FuncProto => {
                let mut strong = self.order(t.type_id().0, through_ptr, next)?;
                for p in t.params() {
                    strong |= self.order(p.type_id.0, through_ptr, next)?;
                }
                Ok(strong)
            }
            Kind::Func | Kind::Var | Kind::Datasec | Kind::DeclTag => {
                self.set_order(id, ORDERED);
                Ok(false)
            }
            _ => Err(self.err(ErrorKind::UnknownKind(t.raw_kind()), id)),
        }
    }

    // ---- emission ----

    fn is_blacklisted(&self, t: &Type<'_>) -> bool {
        // A compiler built-in: redefining it breaks other compilers.
        t.name_off().0 != 0 && self.raw_name(t) == b"__builtin_va_list"
    }

    /// Writes `id`'s definition if it is due, after whatever forward
    /// declarations it needs; `cont_id` is the named type being defined
    /// around it (0 at top level).
    fn emit_type(&mut self, id: u32, cont_id: u32, depth: u32) -> Res {
        self.step(id, depth)?;
        let state = self.emit_state(id);
        if state == EMITTED {
            return Ok(());
        }
        let t = self.ty(id)?;
        let top_level = cont_id == 0;
        let named = t.name_off().0 != 0;
        let next = depth.saturating_add(1);
        if state == EMITTING {
            // Re-entered while defining it: a forward declaration (or, for
            // a typedef, the typedef itself) satisfies the reference.
            if self.flags(id) & FWD_EMITTED != 0 {
                return Ok(());
            }
            match t.kind() {
                Kind::Struct | Kind::Union => {
                    // Self-references need nothing; anonymous loops have
                    // no C form and are skipped, as libbpf does.
                    if id == cont_id || !named {
                        return Ok(());
                    }
                    self.emit_struct_fwd(id, &t)?;
                    self.w(";\n\n")?;
                    self.set_flag(id, FWD_EMITTED);
                }
                Kind::Typedef => {
                    if !self.is_blacklisted(&t) {
                        self.emit_typedef_def(id, &t, 0, next)?;
                        self.w(";\n\n")?;
                    }
                    self.set_flag(id, FWD_EMITTED);
                }
                _ => {}
            }
            return Ok(());
        }
        match t.kind() {
            Kind::Int => {
                self.emit_missing_alias(id)?;
                self.set_emit(id, EMITTED);
            }
            Kind::Enum | Kind::Enum64 => {
                if top_level {
                    self.emit_enum_def(id, &t, 0)?;
                    self.w(";\n\n")?;
                }
                self.set_emit(id, EMITTED);
            }
            Kind::Ptr | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.emit_type(t.type_id().0, cont_id, next)?;
            }
            Kind::Array => {
                let elem = t.as_array().map_or(0, |a| a.elem_type.0);
                self.emit_type(elem, cont_id, next)?;
            }
            Kind::Fwd => {
                self.emit_fwd_def(id, &t)?;
                self.w(";\n\n")?;
                self.set_emit(id, EMITTED);
            }
            Kind::Typedef => {
                self.set_emit(id, EMITTING);
                self.emit_type(t.type_id().0, id, next)?;
                if self.flags(id) & FWD_EMITTED == 0 && !self.is_blacklisted(&t) {
                    self.emit_typedef_def(id, &t, 0, next)?;
                    self.w(";\n\n")?;
                }
                self.set_emit(id, EMITTED);
            }
            Kind::Struct | Kind::Union => {
                self.set_emit(id, EMITTING);
                if top_level || !named {
                    // The body will be written out, so its members' types
                    // need their declarations first.
                    let inner = if named { id } else { cont_id };
                    for m in t.members() {
                        self.emit_type(m.type_id.0, inner, next)?;
                    }
                } else if self.flags(id) & FWD_EMITTED == 0 && id != cont_id {
                    self.emit_struct_fwd(id, &t)?;
                    self.w(";\n\n")?;
                    self.set_flag(id, FWD_EMITTED);
                }
                if top_level {
                    self.emit_struct_def(id, &t, 0, next)?;
                    self.w(";\n\n")?;
                    self.set_emit(id, EMITTED);
                } else {
                    self.set_emit(id, 0);
                }
            }
            Kind::FuncProto => {
                self.emit_type(t.type_id().0, cont_id, next)?;
                for p in t.params() {
                    self.emit_type(p.type_id.0, cont_id, next)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// GCC's Arm SIMD typedefs name internal types; alias them to C ones.
    /// (Also where libbpf first counts an INT's name as a tag.)
    fn emit_missing_alias(&mut self, id: u32) -> Res {
        const ALIASES: [(&[u8], &str); 4] = [
            (b"__Poly8_t", "unsigned char"),
            (b"__Poly16_t", "unsigned short"),
            (b"__Poly64_t", "unsigned long long"),
            (b"__Poly128_t", "unsigned __int128"),
        ];
        let name = self.type_name(id)?;
        // libbpf matches the printed name, so a renamed one never matches.
        let alias = ALIASES
            .iter()
            .find(|(n, _)| name.dup <= 1 && *n == name.name);
        if let Some((_, c)) = alias {
            self.w("typedef ")?;
            self.w(c)?;
            self.w(" ")?;
            self.write_ident(name)?;
            self.w(";\n\n")?;
        }
        Ok(())
    }

    fn emit_struct_fwd(&mut self, id: u32, t: &Type<'_>) -> Res {
        self.w(if t.kind() == Kind::Struct {
            "struct "
        } else {
            "union "
        })?;
        let name = self.type_name(id)?;
        self.write_ident(name)
    }

    fn emit_fwd_def(&mut self, id: u32, t: &Type<'_>) -> Res {
        self.w(if t.kflag() { "union " } else { "struct " })?;
        let name = self.type_name(id)?;
        self.write_ident(name)
    }

    fn emit_enum_fwd(&mut self, id: u32) -> Res {
        self.w("enum ")?;
        let name = self.type_name(id)?;
        self.write_ident(name)
    }

    fn emit_enum_def(&mut self, id: u32, t: &Type<'a>, lvl: u32) -> Res {
        self.w("enum")?;
        if t.name_off().0 != 0 {
            self.w(" ")?;
        }
        let name = self.type_name(id)?;
        self.write_ident(name)?;
        if t.vlen() == 0 {
            return Ok(());
        }
        self.w(" {")?;
        let is64 = t.kind() == Kind::Enum64;
        let signed = t.kflag();
        for e in t.enumerators() {
            let name = self.btf.bytes_at(e.name_off).unwrap_or(b"");
            // Enumerators share the identifier namespace with typedefs.
            let dup = self.ident_names.bump(name);
            self.w("\n")?;
            self.pfx(lvl.saturating_add(1))?;
            self.wb(name)?;
            if dup > 1 {
                write!(self.out, "___{dup}")?;
            }
            match (is64, signed) {
                (false, true) => write!(self.out, " = {},", e.value as i32)?,
                (false, false) => write!(self.out, " = {},", e.value as u32)?,
                (true, true) => write!(self.out, " = {}LL,", e.value as i64)?,
                (true, false) => write!(self.out, " = {}ULL,", e.value)?,
            }
        }
        self.w("\n")?;
        self.pfx(lvl)?;
        self.w("}")?;
        // Not in bpftool 7.1, whose headers get these enums' sizes wrong
        // (1-byte `enum x : u8`, or 8 bytes with only 32-bit values); the
        // attributes are those of later libbpf.
        let word_mode = t.size() == 8
            && self.ptr_size == 8
            && (!is64 || t.enumerators().all(|e| e.value >> 32 == 0));
        if t.size() == 1 {
            self.w(" __attribute__((mode(byte)))")?;
        } else if word_mode {
            self.w(" __attribute__((mode(word)))")?;
        }
        Ok(())
    }

    fn emit_typedef_def(&mut self, id: u32, t: &Type<'a>, lvl: u32, depth: u32) -> Res {
        let name = self.ident_name(id)?;
        // Old GCC emits `__gnuc_va_list` as a typedef of void.
        if t.type_id() == TypeId::VOID && name.dup <= 1 && name.name == b"__gnuc_va_list" {
            return self.w("typedef __builtin_va_list __gnuc_va_list");
        }
        self.w("typedef ")?;
        self.emit_type_decl(t.type_id().0, name, lvl, depth)
    }

    // ---- struct layout ----

    /// `btf__align_of`: natural alignment, except that a composite whose
    /// layout shows it is packed has alignment 1; 0 when unknown (FWD,
    /// void, prototypes).
    fn align_of(&mut self, id: u32, depth: u32) -> Res<u32> {
        if let Some(&a) = self.align.get(id as usize) {
            if a != ALIGN_UNKNOWN {
                return Ok(u32::from(a));
            }
        }
        self.step(id, depth)?;
        let Some(t) = self.btf.get(TypeId(id)) else {
            return Ok(0);
        };
        let next = depth.saturating_add(1);
        let a = match t.kind() {
            Kind::Int | Kind::Enum | Kind::Enum64 | Kind::Float => t.size().min(self.ptr_size),
            Kind::Ptr => self.ptr_size,
            Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                self.align_of(t.type_id().0, next)?
            }
            Kind::Array => {
                let elem = t.as_array().map_or(0, |a| a.elem_type.0);
                self.align_of(elem, next)?
            }
            Kind::Struct | Kind::Union => self.composite_align(&t, next)?,
            _ => 0,
        };
        if let Some(s) = self.align.get_mut(id as usize) {
            *s = u8::try_from(a).unwrap_or(ALIGN_UNKNOWN);
        }
        Ok(a)
    }

    fn composite_align(&mut self, t: &Type<'a>, depth: u32) -> Res<u32> {
        let mut max = 1;
        for m in t.members() {
            let a = self.align_of(m.type_id.0, depth)?;
            if a == 0 {
                return Ok(0);
            }
            max = max.max(a);
            // A field off its type's alignment: the struct is packed.
            if m.bitfield_size == 0
                && !u64::from(m.bit_offset).is_multiple_of(u64::from(a).saturating_mul(8))
            {
                return Ok(1);
            }
        }
        Ok(if t.size().is_multiple_of(max) { max } else { 1 })
    }

    /// A struct needs `packed` when a non-bitfield member sits off its
    /// type's alignment or the size is not a multiple of the members'
    /// largest alignment.
    fn is_packed(&mut self, t: &Type<'a>, depth: u32) -> Res<bool> {
        let mut max = 1;
        for m in t.members() {
            let a = self.align_of(m.type_id.0, depth)?;
            if a != 0
                && m.bitfield_size == 0
                && !u64::from(m.bit_offset).is_multiple_of(u64::from(a).saturating_mul(8))
            {
                return Ok(true);
            }
            max = max.max(a);
        }
        Ok(!t.size().is_multiple_of(max))
    }

    /// Fills the bit gap `cur..next` with anonymous bitfields such that
    /// the compiler puts the next member (alignment `next_align` bytes) at
    /// `next`: first an aligning `type: 0;` (or, inside a bitfield run,
    /// `type: n;`) where natural alignment would not get there, then whole
    /// units of the widest type that fits, then one smallest-fitting tail.
    fn emit_padding(
        &mut self,
        id: u32,
        mut cur: i64,
        next: i64,
        next_align: u32,
        in_bitfield: bool,
        lvl: u32,
    ) -> Res {
        if cur >= next {
            return Ok(());
        }
        let pads: [(&str, i64); 4] = [
            ("long", i64::from(self.ptr_size).saturating_mul(8)),
            ("int", 32),
            ("short", 16),
            ("char", 8),
        ];
        let (mut name, mut unit, mut aligned) = ("char", CHAR_BITS, round_up(cur, CHAR_BITS));
        for (n, bits) in pads {
            (name, unit, aligned) = (n, bits, round_up(cur, bits));
            if aligned <= next {
                break;
            }
        }
        if aligned > cur && aligned <= next {
            let natural = round_up(cur, i64::from(next_align).saturating_mul(8));
            if in_bitfield
                || (aligned == next && natural != aligned)
                || (aligned != next && next.saturating_sub(aligned) <= aligned.saturating_sub(cur))
            {
                let bits = if in_bitfield {
                    aligned.saturating_sub(cur)
                } else {
                    0
                };
                self.pad_line(id, name, bits, lvl)?;
            }
            cur = aligned;
        }
        while cur < next {
            let bits = next.saturating_sub(cur).min(unit);
            if bits == unit {
                self.pad_line(id, name, unit, lvl)?;
                cur = cur.saturating_add(bits);
                continue;
            }
            // The tail: the narrowest type that holds it.
            let tail = pads
                .iter()
                .rev()
                .find(|p| p.1 >= bits)
                .map_or("long", |p| p.0);
            self.pad_line(id, tail, bits, lvl)?;
            cur = cur.saturating_add(bits);
        }
        Ok(())
    }

    fn pad_line(&mut self, id: u32, ty: &str, bits: i64, lvl: u32) -> Res {
        self.spend(id)?;
        self.w("\n")?;
        self.pfx(lvl)?;
        Ok(write!(self.out, "{ty}: {bits};")?)
    }

    fn emit_struct_def(&mut self, id: u32, t: &Type<'a>, lvl: u32, depth: u32) -> Res {
        self.step(id, depth)?;
        let next = depth.saturating_add(1);
        let is_struct = t.kind() == Kind::Struct;
        let align = self.align_of(id, next)?;
        let packed = is_struct && self.is_packed(t, next)?;
        self.w(if is_struct { "struct" } else { "union" })?;
        if t.name_off().0 != 0 {
            self.w(" ")?;
        }
        let name = self.type_name(id)?;
        self.write_ident(name)?;
        self.w(" {")?;
        let mut off: i64 = 0;
        let mut prev_bitfield = false;
        for m in t.members() {
            let fname = Ident::plain(self.btf.bytes_at(m.name_off).unwrap_or(b""));
            let bits = i64::from(m.bitfield_size);
            let m_off = i64::from(m.bit_offset);
            let m_align = if packed {
                1
            } else {
                self.align_of(m.type_id.0, next)?
            };
            self.emit_padding(
                id,
                off,
                m_off,
                m_align,
                prev_bitfield && bits != 0,
                lvl.saturating_add(1),
            )?;
            self.w("\n")?;
            self.pfx(lvl.saturating_add(1))?;
            self.emit_type_decl(m.type_id.0, fname, lvl.saturating_add(1), next)?;
            if bits != 0 {
                write!(self.out, ": {bits}")?;
                off = m_off.saturating_add(bits);
            } else {
                let size = self.btf.resolve_size(m.type_id).map_or(0, i64::from);
                off = m_off.saturating_add(size.saturating_mul(8));
            }
            prev_bitfield = bits != 0;
            self.w(";")?;
        }
        if is_struct {
            self.emit_padding(
                id,
                off,
                i64::from(t.size()).saturating_mul(8),
                align,
                false,
                lvl.saturating_add(1),
            )?;
        }
        // `struct empty {}` stays on one line.
        if t.vlen() != 0 || t.size() != 0 {
            self.w("\n")?;
            self.pfx(lvl)?;
        }
        self.w("}")?;
        if packed {
            self.w(" __attribute__((packed))")?;
        }
        Ok(())
    }

    // ---- declarators ----

    /// Writes a declaration of `fname` with type `id`: the chain of
    /// pointers, arrays, modifiers and prototypes down to a named (or
    /// inline anonymous) type, in C's inside-out syntax.
    fn emit_type_decl(&mut self, id: u32, fname: Ident<'_>, lvl: u32, depth: u32) -> Res {
        self.step(id, depth)?;
        let base = self.decl.len();
        let mut id = id;
        loop {
            if self.decl.len().saturating_sub(base) >= MAX_DECL_CHAIN {
                return Err(self.err(ErrorKind::TypeChainTooDeep(TypeId(id)), id));
            }
            self.decl
                .try_reserve(1)
                .map_err(|_| self.err(ErrorKind::OutOfMemory, id))?;
            self.decl.push(id);
            if id == 0 {
                break;
            }
            let t = self.ty(id)?;
            id = match t.kind() {
                Kind::Ptr
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::FuncProto
                | Kind::TypeTag => t.type_id().0,
                Kind::Array => t.as_array().map_or(0, |a| a.elem_type.0),
                // Named types, and kinds with no place in a declarator
                // (libbpf warns and writes what it has).
                _ => break,
            };
        }
        let mut view = View {
            base,
            cnt: self.decl.len().saturating_sub(base),
        };
        let r = self.emit_type_chain(&mut view, fname, lvl, depth.saturating_add(1));
        self.decl.truncate(base);
        r
    }

    fn peek(&self, v: &View) -> Option<u32> {
        let top = v.base.checked_add(v.cnt)?.checked_sub(1)?;
        if v.cnt == 0 {
            return None;
        }
        self.decl.get(top).copied()
    }

    fn pop(&self, v: &mut View) -> Option<u32> {
        let id = self.peek(v)?;
        v.cnt = v.cnt.saturating_sub(1);
        Some(id)
    }

    /// Writes the qualifiers on top of the stack, left of a base type.
    fn emit_mods(&mut self, v: &mut View) -> Res {
        while let Some(id) = self.peek(v) {
            let s = match self.kind_of(id)? {
                Some(Kind::Volatile) => "volatile ",
                Some(Kind::Const) => "const ",
                Some(Kind::Restrict) => "restrict ",
                _ => return Ok(()),
            };
            self.w(s)?;
            v.cnt = v.cnt.saturating_sub(1);
        }
        Ok(())
    }

    /// Qualifiers on arrays and prototypes (GCC quirks) mean nothing in C.
    fn drop_mods(&mut self, v: &mut View) -> Res {
        while let Some(id) = self.peek(v) {
            match self.kind_of(id)? {
                Some(k) if k.is_modifier() => v.cnt = v.cnt.saturating_sub(1),
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    fn emit_name(&mut self, fname: Ident<'_>, last_was_ptr: bool) -> Res {
        if !fname.is_empty() && !last_was_ptr {
            self.w(" ")?;
        }
        self.write_ident(fname)
    }

    fn emit_type_chain(&mut self, v: &mut View, fname: Ident<'_>, lvl: u32, depth: u32) -> Res {
        self.step(0, depth)?;
        let next = depth.saturating_add(1);
        // Start as if after a pointer: a lone `*` in `(*f)` needs no space.
        let mut last_was_ptr = true;
        while let Some(id) = self.pop(v) {
            if id == 0 {
                self.emit_mods(v)?;
                self.w("void")?;
                last_was_ptr = false;
                continue;
            }
            let t = self.ty(id)?;
            let kind = t.kind();
            match kind {
                Kind::Int | Kind::Float => {
                    self.emit_mods(v)?;
                    let n = self.raw_name(&t);
                    self.wb(n)?;
                }
                Kind::Struct | Kind::Union => {
                    self.emit_mods(v)?;
                    if t.name_off().0 == 0 {
                        self.emit_struct_def(id, &t, lvl, next)?;
                    } else {
                        self.emit_struct_fwd(id, &t)?;
                    }
                }
                Kind::Enum | Kind::Enum64 => {
                    self.emit_mods(v)?;
                    if t.name_off().0 == 0 {
                        self.emit_enum_def(id, &t, lvl)?;
                    } else {
                        self.emit_enum_fwd(id)?;
                    }
                }
                Kind::Fwd => {
                    self.emit_mods(v)?;
                    self.emit_fwd_def(id, &t)?;
                }
                Kind::Typedef => {
                    self.emit_mods(v)?;
                    let name = self.ident_name(id)?;
                    self.write_ident(name)?;
                }
                Kind::Ptr => self.w(if last_was_ptr { "*" } else { " *" })?,
                Kind::Volatile => self.w(" volatile")?,
                Kind::Const => self.w(" const")?,
                Kind::Restrict => self.w(" restrict")?,
                Kind::TypeTag => {
                    self.emit_mods(v)?;
                    self.w(" __attribute__((btf_type_tag(\"")?;
                    let n = self.raw_name(&t);
                    self.wb(n)?;
                    self.w("\")))")?;
                }
                Kind::Array => {
                    let nelems = t.as_array().map_or(0, |a| a.nelems);
                    self.drop_mods(v)?;
                    let Some(inner) = self.peek(v) else {
                        self.emit_name(fname, last_was_ptr)?;
                        write!(self.out, "[{nelems}]")?;
                        return Ok(());
                    };
                    // `int a[2][3]` needs no parentheses; `int (*a)[3]` does.
                    let multidim = self.kind_of(inner)? == Some(Kind::Array);
                    if !fname.is_empty() && !last_was_ptr {
                        self.w(" ")?;
                    }
                    if !multidim {
                        self.w("(")?;
                    }
                    self.emit_type_chain(v, fname, lvl, next)?;
                    if !multidim {
                        self.w(")")?;
                    }
                    write!(self.out, "[{nelems}]")?;
                    return Ok(());
                }
                Kind::FuncProto => {
                    self.drop_mods(v)?;
                    if v.cnt > 0 {
                        self.w(" (")?;
                        self.emit_type_chain(v, fname, lvl, next)?;
                        self.w(")")?;
                    } else {
                        self.emit_name(fname, last_was_ptr)?;
                    }
                    self.w("(")?;
                    let vlen = t.vlen() as usize;
                    let mut params = t.params();
                    // No parameters, or clang's lone `void` one: `(void)`.
                    if vlen == 0 || (vlen == 1 && params.next().map(|p| p.type_id.0) == Some(0)) {
                        return self.w("void)");
                    }
                    for (i, p) in t.params().enumerate() {
                        if i > 0 {
                            self.w(", ")?;
                        }
                        if i.saturating_add(1) == vlen && p.type_id == TypeId::VOID {
                            self.w("...")?;
                            break;
                        }
                        let pname = Ident::plain(self.btf.bytes_at(p.name_off).unwrap_or(b""));
                        self.emit_type_decl(p.type_id.0, pname, lvl, next)?;
                    }
                    return self.w(")");
                }
                // No C form (libbpf warns and stops this declarator).
                _ => return Ok(()),
            }
            last_was_ptr = kind == Kind::Ptr;
        }
        self.emit_name(fname, last_was_ptr)
    }
}

/// `x` rounded up to a multiple of `unit` (unchanged for a zero unit).
fn round_up(x: i64, unit: i64) -> i64 {
    match x.checked_rem(unit) {
        Some(r) if r != 0 => x.saturating_add(unit.saturating_sub(r)),
        _ => x,
    }
}

/// A zero-filled table of `n` entries, or an error if it cannot be had.
fn alloc_table<T: Clone>(n: usize, fill: T) -> Res<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| DumpError::Btf(Error::new(ErrorKind::OutOfMemory, 0)))?;
    v.resize(n, fill);
    Ok(v)
}

/// Decimal digits of `v` into `buf`; returns how many.
fn fmt_u32(mut v: u32, buf: &mut [u8; 10]) -> usize {
    let mut tmp = [0u8; 10];
    let mut n = 0;
    loop {
        if let Some(d) = tmp.get_mut(n) {
            *d = b'0'.saturating_add((v % 10) as u8);
        }
        n = n.saturating_add(1);
        v /= 10;
        if v == 0 || n >= tmp.len() {
            break;
        }
    }
    for (d, s) in buf.iter_mut().zip(tmp.iter().take(n).rev()) {
        *d = *s;
    }
    n
}

#[cfg(test)]
mod tests {
    use alloc::string::String;
    use alloc::vec::Vec;

    use super::{DumpError, dump};
    use crate::btf::Btf;
    use crate::btf::raw::*;
    use crate::error::ErrorKind;

    /// A little-endian BTF blob built record by record; ids count from 1.
    struct Builder {
        types: Vec<u8>,
        strs: Vec<u8>,
        last: u32,
    }

    impl Builder {
        fn new() -> Self {
            Builder {
                types: Vec::new(),
                strs: alloc::vec![0],
                last: 0,
            }
        }

        fn word(&mut self, w: u32) {
            self.types.extend_from_slice(&w.to_le_bytes());
        }

        fn str(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let off = self.strs.len() as u32;
            self.strs.extend_from_slice(s.as_bytes());
            self.strs.push(0);
            off
        }

        fn ty(&mut self, name: &str, kind: u8, vlen: u32, kflag: bool, st: u32) -> u32 {
            let n = self.str(name);
            self.word(n);
            self.word(vlen | (u32::from(kind) << 24) | (u32::from(kflag) << 31));
            self.word(st);
            self.last += 1;
            self.last
        }

        fn int(&mut self, name: &str, size: u32) -> u32 {
            let id = self.ty(name, BTF_KIND_INT, 0, false, size);
            self.word((u32::from(BTF_INT_SIGNED) << 24) | (size * 8));
            id
        }

        fn reference(&mut self, kind: u8, name: &str, to: u32) -> u32 {
            self.ty(name, kind, 0, false, to)
        }

        /// `members`: (name, type, bit offset); no bitfields.
        fn composite(
            &mut self,
            kind: u8,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32)],
        ) -> u32 {
            let id = self.ty(name, kind, members.len() as u32, false, size);
            for &(n, t, off) in members {
                let n = self.str(n);
                self.word(n);
                self.word(t);
                self.word(off);
            }
            id
        }

        fn proto(&mut self, ret: u32, params: &[u32]) -> u32 {
            let id = self.ty("", BTF_KIND_FUNC_PROTO, params.len() as u32, false, ret);
            for &p in params {
                self.word(0);
                self.word(p);
            }
            id
        }

        fn enum32(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
            let id = self.ty(name, BTF_KIND_ENUM, values.len() as u32, true, 4);
            for &(n, v) in values {
                let n = self.str(n);
                self.word(n);
                self.word(v as u32);
            }
            id
        }

        fn blob(&self) -> Vec<u8> {
            let mut b = Vec::new();
            b.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            b.extend_from_slice(&[BTF_VERSION, 0]);
            let tl = self.types.len() as u32;
            for w in [24, 0, tl, tl, self.strs.len() as u32] {
                b.extend_from_slice(&w.to_le_bytes());
            }
            b.extend_from_slice(&self.types);
            b.extend_from_slice(&self.strs);
            b
        }
    }

    /// The header without bpftool's fixed preamble and trailer.
    fn body(b: &Builder) -> Result<String, DumpError> {
        let blob = b.blob();
        let btf = Btf::parse(&blob).expect("test blob parses");
        let mut s = String::new();
        dump(&btf, &mut s)?;
        let start = s.find("#endif\n\n").expect("preamble") + 8;
        let end = s
            .rfind("#ifndef BPF_NO_PRESERVE_ACCESS_INDEX")
            .expect("trailer");
        Ok(String::from(&s[start..end]))
    }

    fn kind_of(e: DumpError) -> Option<ErrorKind> {
        match e {
            DumpError::Btf(e) => Some(e.kind()),
            _ => None,
        }
    }

    #[test]
    fn declarators_padding_and_forward_declarations() {
        let mut b = Builder::new();
        let int = b.int("int", 4); // 1
        let long = b.int("long", 8); // 2
        let ptr_s = b.reference(BTF_KIND_PTR, "", 4); // 3: struct s *
        let s = b.composite(
            BTF_KIND_STRUCT,
            "s",
            32,
            &[
                ("c", int, 0),
                ("next", ptr_s, 64),
                ("f", 7, 128),
                ("u", 9, 192),
            ],
        ); // 4
        assert_eq!(s, 4);
        let cint = b.reference(BTF_KIND_CONST, "", int); // 5
        let proto = b.proto(int, &[cint, 0]); // 6: int (const int, ...)
        b.reference(BTF_KIND_PTR, "", proto); // 7
        b.reference(BTF_KIND_TYPEDEF, "fn_t", 7); // 8
        b.composite(BTF_KIND_UNION, "", 8, &[("a", long, 0), ("b", int, 0)]); // 9
        b.composite(BTF_KIND_STRUCT, "empty", 0, &[]); // 10
        let want = "struct s {\n\
            \tint c;\n\
            \tstruct s *next;\n\
            \tint (*f)(const int, ...);\n\
            \tunion {\n\
            \t\tlong a;\n\
            \t\tint b;\n\
            \t} u;\n\
            };\n\n\
            typedef int (*fn_t)(const int, ...);\n\n\
            struct empty {};\n\n";
        assert_eq!(body(&b).expect("dump"), want);
    }

    #[test]
    fn packed_structs_and_odd_sized_enums() {
        let mut b = Builder::new();
        let ch = b.int("char", 1);
        let int = b.int("int", 4);
        b.composite(BTF_KIND_STRUCT, "p", 5, &[("c", ch, 0), ("i", int, 8)]);
        let e = b.ty("e8", BTF_KIND_ENUM, 1, false, 1);
        let n = b.str("E8");
        b.word(n);
        b.word(3);
        b.composite(BTF_KIND_STRUCT, "q", 2, &[("c", ch, 0), ("e", e, 8)]);
        let want = "struct p {\n\tchar c;\n\tint i;\n} __attribute__((packed));\n\n\
            enum e8 {\n\tE8 = 3,\n} __attribute__((mode(byte)));\n\n\
            struct q {\n\tchar c;\n\tenum e8 e;\n};\n\n";
        assert_eq!(body(&b).expect("dump"), want);
    }

    #[test]
    fn duplicate_names_get_suffixes() {
        let mut b = Builder::new();
        let int = b.int("int", 4);
        b.composite(BTF_KIND_STRUCT, "dup", 4, &[("a", int, 0)]);
        b.composite(BTF_KIND_STRUCT, "dup", 8, &[("a", int, 0), ("b", int, 32)]);
        b.enum32("", &[("X", -1)]);
        b.enum32("e", &[("X", 2)]);
        let got = body(&b).expect("dump");
        assert!(got.contains("struct dup {\n\tint a;\n};"), "{got}");
        assert!(
            got.contains("struct dup___2 {\n\tint a;\n\tint b;\n};"),
            "{got}"
        );
        assert!(got.contains("enum {\n\tX = -1,\n};"), "{got}");
        assert!(got.contains("enum e {\n\tX___2 = 2,\n};"), "{got}");
    }

    #[test]
    fn pointer_cycle_is_broken_by_a_forward_declaration() {
        let mut b = Builder::new();
        let int = b.int("int", 4); // 1
        b.composite(BTF_KIND_STRUCT, "a", 8, &[("b", 3, 0)]); // 2
        b.reference(BTF_KIND_PTR, "", 4); // 3: struct b *
        b.composite(BTF_KIND_STRUCT, "b", 16, &[("a", 2, 0), ("x", int, 64)]); // 4
        let want = "struct b;\n\n\
            struct a {\n\tstruct b *b;\n};\n\n\
            struct b {\n\tstruct a a;\n\tint x;\n};\n\n";
        assert_eq!(body(&b).expect("dump"), want);
    }

    #[test]
    fn embedding_cycle_is_an_error() {
        let mut b = Builder::new();
        b.composite(BTF_KIND_STRUCT, "a", 4, &[("b", 2, 0)]);
        b.composite(BTF_KIND_STRUCT, "b", 4, &[("a", 1, 0)]);
        let e = body(&b).expect_err("cycle");
        assert!(matches!(kind_of(e), Some(ErrorKind::TypeChainTooDeep(_))));
    }

    #[test]
    fn modifier_loop_and_deep_chains_end_in_errors() {
        let mut b = Builder::new();
        b.reference(BTF_KIND_TYPEDEF, "t", 2);
        b.reference(BTF_KIND_CONST, "", 1);
        let e = body(&b).expect_err("loop");
        assert!(matches!(kind_of(e), Some(ErrorKind::TypeChainTooDeep(_))));

        let mut b = Builder::new();
        b.int("int", 4);
        for i in 2..5000 {
            b.reference(BTF_KIND_CONST, "", i + 1);
        }
        b.reference(BTF_KIND_TYPEDEF, "deep", 2);
        let e = body(&b).expect_err("deep");
        assert!(matches!(kind_of(e), Some(ErrorKind::TypeChainTooDeep(_))));
    }

    #[test]
    fn exponential_nesting_and_huge_padding_hit_the_work_limit() {
        // Each prototype takes the next one twice: 2^60 walks.
        let mut b = Builder::new();
        let int = b.int("int", 4);
        for i in 0..60 {
            b.proto(int, &[i + 3, i + 3]);
        }
        b.proto(int, &[int]);
        assert!(matches!(body(&b), Err(DumpError::TooLarge(_))));

        // A 2 GiB struct would be 2^28 lines of `long: 64;`.
        let mut b = Builder::new();
        b.composite(BTF_KIND_STRUCT, "huge", 0x7fff_fff8, &[]);
        assert!(matches!(body(&b), Err(DumpError::TooLarge(_))));
    }

    #[test]
    fn writer_errors_surface_as_fmt() {
        struct Full;
        impl core::fmt::Write for Full {
            fn write_str(&mut self, _: &str) -> core::fmt::Result {
                Err(core::fmt::Error)
            }
        }
        let mut b = Builder::new();
        b.int("int", 4);
        let blob = b.blob();
        let btf = Btf::parse(&blob).expect("parse");
        assert_eq!(dump(&btf, &mut Full), Err(DumpError::Fmt));
    }
}
