//! Candidate collection in one pass over a target BTF, for all local root
//! types of an object at once: the alternative to building the target's
//! name index when one BTF serves one object.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use hashbrown::HashTable;

use super::Candidate;
use super::spec::essential;
use crate::btf::{Btf, Kind, StrOffset, TypeId, essential_name_len};
use crate::error::{Error, ErrorKind, Result};

/// ENUM and ENUM64 are one candidate group.
fn group(k: Kind) -> Kind {
    if k == Kind::Enum64 { Kind::Enum } else { k }
}

fn hash(k: Kind, name: &[u8]) -> u64 {
    // FNV-1a over the kind and name: the set is small, quality is ample.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (k as u64);
    for &b in name {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The local roots wanted, keyed by (kind group, essential name).
struct Wanted<'l> {
    table: HashTable<(Kind, &'l [u8], usize)>,
    /// Root ids per entry.
    roots: Vec<Vec<TypeId>>,
    /// Bit per raw kind present among the roots.
    kinds: u64,
    /// Bit per (first, second) name byte pair present among the roots: a
    /// cheap filter before hashing a target name.
    pairs: Vec<u64>,
}

/// The first two bytes of a name, a NUL (or the end) ending it early.
fn pair(name: &[u8]) -> usize {
    let a = name.first().copied().unwrap_or(0);
    let b = if a == 0 {
        0
    } else {
        name.get(1).copied().unwrap_or(0)
    };
    let (a, b) = (usize::from(a), usize::from(b));
    (a << 8) | b
}

impl Wanted<'_> {
    fn may_want(&self, name: &[u8]) -> bool {
        let p = pair(name);
        self.pairs
            .get(p / 64)
            .is_some_and(|w| w & (1u64 << (p % 64)) != 0)
    }
}

fn wanted<'l>(local: &Btf<'l>, roots: &[TypeId]) -> Result<Wanted<'l>> {
    let oom = || Error::new(ErrorKind::OutOfMemory, 0);
    let mut w = Wanted {
        table: HashTable::new(),
        roots: Vec::new(),
        kinds: 0,
        pairs: Vec::new(),
    };
    w.pairs.try_reserve(1024).map_err(|_| oom())?;
    w.pairs.resize(1024, 0);
    for &r in roots {
        // A bad root is reported by its own relocation, in order.
        let Ok(t) = local.type_by_id(r) else { continue };
        let name = local.bytes_at(t.name_off()).unwrap_or(&[]);
        let name_str = core::str::from_utf8(name).unwrap_or("");
        let ess = essential(name_str);
        if ess.is_empty() {
            continue;
        }
        let g = group(t.kind());
        let p = pair(ess);
        if let Some(word) = w.pairs.get_mut(p / 64) {
            *word |= 1u64 << (p % 64);
        }
        w.kinds |= 1u64 << (t.raw_kind() & 63);
        if g == Kind::Enum {
            w.kinds |=
                (1 << crate::btf::raw::BTF_KIND_ENUM) | (1 << crate::btf::raw::BTF_KIND_ENUM64);
        }
        let h = hash(g, ess);
        let slot = match w.table.find(h, |&(k, n, _)| k == g && n == ess) {
            Some(&(_, _, i)) => i,
            None => {
                let i = w.roots.len();
                w.roots.try_reserve(1).map_err(|_| oom())?;
                w.roots.push(Vec::new());
                w.table
                    .insert_unique(h, (g, ess, i), |&(k, n, _)| hash(k, n));
                i
            }
        };
        if let Some(v) = w.roots.get_mut(slot) {
            v.try_reserve(1).map_err(|_| oom())?;
            v.push(r);
        }
    }
    Ok(w)
}

/// Collects candidates for every root in `roots` with one pass over
/// `target`'s own types (ids ascending, so lists come out in libbpf's
/// order). Roots with no match are absent from the result.
pub fn scan_candidates(
    local: &Btf<'_>,
    roots: &[TypeId],
    target: &Btf<'_>,
    target_index: usize,
) -> Result<BTreeMap<TypeId, Vec<Candidate>>> {
    let w = wanted(local, roots)?;
    let mut out: BTreeMap<TypeId, Vec<Candidate>> = BTreeMap::new();
    for (id, name_off, raw) in target.own_headers_of_kinds(w.kinds) {
        if name_off == 0 {
            continue;
        }
        // The pair filter reads two bytes; finding the NUL waits for it.
        let Some(tail) = target.bytes_from(StrOffset(name_off)) else {
            continue;
        };
        if !w.may_want(tail) {
            continue;
        }
        let Some(name) = target.bytes_at(StrOffset(name_off)) else {
            continue;
        };
        let Some(k) = Kind::from_raw(raw) else {
            continue;
        };
        let ess = name.get(..essential_name_len(name)).unwrap_or(name);
        if ess.is_empty() {
            continue;
        }
        let g = group(k);
        let Some(&(_, _, slot)) = w
            .table
            .find(hash(g, ess), |&(kk, n, _)| kk == g && n == ess)
        else {
            continue;
        };
        for &r in w.roots.get(slot).map(Vec::as_slice).unwrap_or(&[]) {
            let v = out.entry(r).or_default();
            v.try_reserve(1)
                .map_err(|_| Error::new(ErrorKind::OutOfMemory, 0))?;
            v.push(Candidate {
                target: target_index,
                id,
            });
        }
    }
    Ok(out)
}
