//! Finding types by name, three ways, cheapest first:
//!
//! - **binary search** when the BTF's own types are sorted by name with the
//!   anonymous ones first (vmlinux built by a `resolve_btfids` that sorts,
//!   or [`super::sort_by_name`] output), detected once at open;
//! - **one targeted pass** ([`Btf::find_many`]) when a load needs only a
//!   handful of names: it reads each candidate's name once, for all wanted
//!   names together, instead of building the index;
//! - the **name index**, built on first use, when a BTF serves many
//!   lookups (a BTF shared by several loads).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::ops::Range;

use hashbrown::HashTable;

use super::index::hash;
use super::raw::info_kind;
use super::{Btf, Kind, StrOffset, TypeId, essential_name, essential_name_len};
use crate::bytes::u32_at;
use crate::error::{Error, ErrorKind, Result};

/// Results of a [`Btf::prefetch`]: (name, kind) → first id, sorted by key.
pub(super) struct Prefetched {
    found: Vec<(Box<[u8]>, Kind, Option<TypeId>)>,
}

impl Prefetched {
    fn get(&self, name: &[u8], kind: Kind) -> Option<Option<TypeId>> {
        self.found
            .binary_search_by(|(n, k, _)| (&**n, *k).cmp(&(name, kind)))
            .ok()
            .and_then(|i| self.found.get(i))
            .map(|&(_, _, id)| id)
    }
}

fn oom() -> Error {
    Error::new(ErrorKind::OutOfMemory, 0)
}

impl<'a> Btf<'a> {
    /// Name of own type number `local` (0 = `start_id`), empty when
    /// anonymous.
    #[inline]
    fn own_name(&self, local: u32) -> &'a [u8] {
        let Some(&off) = self.offsets.get(local as usize) else {
            return &[];
        };
        let name_off = u32_at(self.data, off as usize, self.endian).unwrap_or(0);
        self.bytes_at(StrOffset(name_off)).unwrap_or(&[])
    }

    /// First own index in `from..` whose name fails `below` (the names
    /// there being sorted, `below` true then false).
    fn partition(&self, from: u32, below: impl Fn(&[u8]) -> bool) -> u32 {
        let (mut lo, mut hi) = (from, self.offsets.len() as u32);
        while lo < hi {
            let mid = lo.saturating_add(hi.saturating_sub(lo) / 2);
            if below(self.own_name(mid)) {
                lo = mid.saturating_add(1);
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Own indices of the types named exactly `name`, when sorted.
    fn sorted_exact(&self, from: u32, name: &[u8]) -> Range<u32> {
        let lo = self.partition(from, |n| n < name);
        let hi = self.partition(lo, |n| n <= name);
        lo..hi
    }

    /// Checks whether own types are sorted by name, anonymous first, and
    /// returns the index of the first named one. Stops at the first
    /// misplaced type, so unsorted BTF costs a few comparisons.
    pub(super) fn detect_sorted(&self) -> Option<u32> {
        let mut first = None;
        let mut prev: &[u8] = &[];
        for i in 0..self.offsets.len() as u32 {
            let name = self.own_name(i);
            match (name.is_empty(), first) {
                (true, None) => {}
                (true, Some(_)) => return None,
                (false, None) => first = Some(i),
                (false, Some(_)) if name < prev => return None,
                (false, Some(_)) => {}
            }
            prev = name;
        }
        first
    }

    /// Whether own types are sorted by name (anonymous first), so that
    /// lookups binary-search instead of using the index.
    pub fn is_sorted_by_name(&self) -> bool {
        self.sorted.is_some()
    }

    /// The lowest own id with exactly `name` and `kind`, not looking at
    /// the base (for split BTF: the module's own type): binary search when
    /// sorted, else the index.
    pub fn find_own_by_name_kind(&self, name: &str, kind: Kind) -> Option<TypeId> {
        let n = name.as_bytes();
        if let Some(from) = self.sorted {
            return self
                .sorted_exact(from, n)
                .find(|&i| self.own_kind(i) == Some(kind))
                .map(|i| TypeId(self.start_id.saturating_add(i)));
        }
        self.index()
            .find(self, essential_name(name), kind)
            .filter(|&id| self.get(id).and_then(|t| self.bytes_at(t.name_off())) == Some(n))
            .min()
    }

    fn own_kind(&self, local: u32) -> Option<Kind> {
        let off = *self.offsets.get(local as usize)? as usize;
        let info = u32_at(self.data, off.saturating_add(4), self.endian)?;
        Kind::from_raw(info_kind(info))
    }

    /// The first type with exactly `name` and `kind`, searching the base
    /// first (libbpf's `btf__find_by_name_kind`).
    pub fn find_by_name_kind(&self, name: &str, kind: Kind) -> Option<TypeId> {
        if let Some(hit) = self
            .prefetched
            .get()
            .and_then(|p| p.get(name.as_bytes(), kind))
        {
            return hit;
        }
        if let Some(b) = self.base {
            if let Some(id) = b.find_by_name_kind(name, kind) {
                return Some(id);
            }
        }
        self.find_own_by_name_kind(name, kind)
    }

    /// Own types of `kind` whose essential name (flavor suffix stripped)
    /// is `essential`, in id order: the CO-RE candidate rule.
    ///
    /// # Errors
    /// [`ErrorKind::OutOfMemory`].
    pub fn find_essential(&self, essential: &str, kind: Kind) -> Result<Vec<TypeId>> {
        let mut out = Vec::new();
        let e = essential.as_bytes();
        if let Some(from) = self.sorted {
            // The exact name, then the contiguous run of names starting
            // with `essential___` (some of which strip to it).
            let exact = self.sorted_exact(from, e);
            let mut p = Vec::new();
            p.try_reserve(e.len().saturating_add(3))
                .map_err(|_| oom())?;
            p.extend_from_slice(e);
            p.extend_from_slice(b"___");
            let lo = self.partition(exact.end, |n| n < p.as_slice());
            let flavored = lo..self.partition(lo, |n| n.starts_with(&p));
            for i in exact.chain(flavored) {
                let n = self.own_name(i);
                if self.own_kind(i) == Some(kind) && n.get(..essential_name_len(n)) == Some(e) {
                    out.try_reserve(1).map_err(|_| oom())?;
                    out.push(TypeId(self.start_id.saturating_add(i)));
                }
            }
        } else {
            for id in self.index().find(self, essential, kind) {
                out.try_reserve(1).map_err(|_| oom())?;
                out.push(id);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// [`Btf::find_by_name_kind`] for several names at once: the base
    /// first, then this BTF's own types in one pass over their names when
    /// neither the index nor binary search is available (a pass costs
    /// less than building the index, whatever the number of names).
    ///
    /// # Errors
    /// [`ErrorKind::OutOfMemory`].
    pub fn find_many(&self, wants: &[(&str, Kind)]) -> Result<Vec<Option<TypeId>>> {
        let mut out = match self.base {
            Some(b) => b.find_many(wants)?,
            None => {
                let mut v = Vec::new();
                v.try_reserve(wants.len()).map_err(|_| oom())?;
                v.resize(wants.len(), None);
                v
            }
        };
        if self.sorted.is_some() || self.has_index() {
            for (o, &(name, kind)) in out.iter_mut().zip(wants) {
                if o.is_none() {
                    *o = self.find_own_by_name_kind(name, kind);
                }
            }
            return Ok(out);
        }
        self.scan_for(wants, &mut out)?;
        Ok(out)
    }

    /// One pass over own types filling `out[i]` (where still `None`) with
    /// the lowest id named `wants[i]`.
    fn scan_for(&self, wants: &[(&str, Kind)], out: &mut [Option<TypeId>]) -> Result<()> {
        // (name, kind) → slot, with a kind mask as the first filter.
        let mut table: HashTable<(usize, u64)> = HashTable::new();
        table
            .try_reserve(wants.len(), |&(_, h)| h)
            .map_err(|_| oom())?;
        let mut kinds = 0u64;
        // A name asked for twice: (later index, first index).
        let mut aliases: Vec<(usize, usize)> = Vec::new();
        for (i, &(name, kind)) in wants.iter().enumerate() {
            if out.get(i).is_some_and(Option::is_some) || name.is_empty() {
                continue;
            }
            let h = hash(kind, name.as_bytes());
            let same = |&(j, _): &(usize, u64)| wants.get(j) == Some(&(name, kind));
            if let Some(&(j, _)) = table.find(h, same) {
                aliases.try_reserve(1).map_err(|_| oom())?;
                aliases.push((i, j));
                continue;
            }
            table.insert_unique(h, (i, h), |&(_, h)| h);
            kinds |= 1u64 << (kind as u64 & 63);
        }
        if table.is_empty() {
            return Ok(());
        }
        let mut left = table.len();
        for (id, name_off, info) in self.own_headers() {
            let Some(kind) = Kind::from_raw(info_kind(info)) else {
                continue;
            };
            if name_off == 0 || kinds & (1u64 << (kind as u64 & 63)) == 0 {
                continue;
            }
            let Some(name) = self.bytes_at(StrOffset(name_off)) else {
                continue;
            };
            let h = hash(kind, name);
            let hit = table.find(h, |&(i, _)| {
                wants
                    .get(i)
                    .is_some_and(|&(n, k)| k == kind && n.as_bytes() == name)
            });
            if let Some(slot) = hit.and_then(|&(i, _)| out.get_mut(i)) {
                if slot.is_none() {
                    *slot = Some(id);
                    left = left.saturating_sub(1);
                    if left == 0 {
                        break;
                    }
                }
            }
        }
        for (i, j) in aliases {
            let v = out.get(j).copied().flatten();
            if let Some(slot) = out.get_mut(i) {
                *slot = v;
            }
        }
        Ok(())
    }

    /// Looks `wants` up with [`Btf::find_many`] and keeps the answers, so
    /// that later [`Btf::find_by_name_kind`] calls for them cost a binary
    /// search in a small table. For one load against a fresh BTF; a second
    /// prefetch asking for something new means the BTF serves several
    /// loads, and builds the full index instead (binary search needs
    /// neither).
    ///
    /// # Errors
    /// [`ErrorKind::OutOfMemory`].
    pub fn prefetch(&self, wants: &[(&str, Kind)]) -> Result<()> {
        if wants.is_empty() || self.sorted.is_some() || self.has_index() {
            return Ok(());
        }
        if let Some(p) = self.prefetched.get() {
            if wants.iter().any(|&(n, k)| p.get(n.as_bytes(), k).is_none()) {
                self.index();
            }
            return Ok(());
        }
        let ids = self.find_many(wants)?;
        let mut found = Vec::new();
        found.try_reserve(wants.len()).map_err(|_| oom())?;
        for (&(name, kind), id) in wants.iter().zip(ids) {
            let mut n = Vec::new();
            n.try_reserve(name.len()).map_err(|_| oom())?;
            n.extend_from_slice(name.as_bytes());
            found.push((n.into_boxed_slice(), kind, id));
        }
        crate::order::sort_by(&mut found, |a, b| (&*a.0, a.1).cmp(&(&*b.0, b.1)));
        found.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        // A racing prefetch of the same BTF wins; either answer is right.
        let _ = self.prefetched.set(Box::new(Prefetched { found }));
        Ok(())
    }
}
