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

use self::names::{Ident, NameCounts};
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
}

/// A zero-filled table of `n` entries, or an error if it cannot be had.
fn alloc_table<T: Clone>(n: usize, fill: T) -> Res<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| DumpError::Btf(Error::new(ErrorKind::OutOfMemory, 0)))?;
    v.resize(n, fill);
    Ok(v)
}

mod decl;
mod emit;
mod layout;
mod names;
mod order;
#[cfg(test)]
mod tests;
