//! Name index: essential name + kind → type ids, built once per BTF.
//!
//! The table stores only `TypeId`s (4 bytes each); keys are hashed straight
//! from the string section, so no name is copied.

use hashbrown::HashTable;

use super::raw::info_kind;
use super::strings::essential_name_len;
use super::{Btf, Kind, StrOffset, TypeId};

/// Index of a BTF's own named types by essential name (flavor suffix
/// stripped) and kind.
pub struct NameIndex {
    table: HashTable<TypeId>,
}

impl core::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NameIndex")
            .field("entries", &self.table.len())
            .finish()
    }
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Fx-style hash of the kind and the essential name bytes.
#[inline]
pub(super) fn hash(kind: Kind, name: &[u8]) -> u64 {
    let mut h = (kind as u64).wrapping_mul(SEED);
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(SEED);
    }
    // A byte loop, not copy_from_slice: a variable-length copy is a memcpy call.
    let tail = chunks
        .remainder()
        .iter()
        .rev()
        .fold(0u64, |w, &b| (w << 8) | u64::from(b));
    h = (h.rotate_left(5) ^ tail ^ (name.len() as u64)).wrapping_mul(SEED);
    // Finalize (murmur3 fmix64): the bucket index uses the low bits, the
    // control byte the top 7, and a bare multiply mixes neither well.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

fn key<'a>(btf: &Btf<'a>, id: TypeId) -> Option<(Kind, &'a [u8])> {
    let t = btf.get(id)?;
    let name = btf.bytes_at(t.name_off())?;
    Some((t.kind(), name.get(..essential_name_len(name))?))
}

impl NameIndex {
    /// Indexes every named type of `btf` (not its base).
    pub fn build(btf: &Btf<'_>) -> NameIndex {
        let named = btf.named_count() as usize;
        let mut table = HashTable::new();
        // A failed reservation only means a slower, growing build.
        let _ = table.try_reserve(named, |_: &TypeId| 0);
        for (id, name_off, info) in btf.own_headers() {
            if name_off == 0 {
                continue;
            }
            let Some(name) = btf.bytes_at(StrOffset(name_off)) else {
                continue;
            };
            let ess = name.get(..essential_name_len(name)).unwrap_or(name);
            let Some(kind) = Kind::from_raw(info_kind(info)) else {
                continue;
            };
            if ess.is_empty() {
                continue;
            }
            table.insert_unique(hash(kind, ess), id, |&id| {
                key(btf, id).map_or(0, |(k, n)| hash(k, n))
            });
        }
        NameIndex { table }
    }

    /// Bytes of heap the table holds.
    pub fn heap_bytes(&self) -> usize {
        self.table.allocation_size()
    }

    /// Number of indexed types.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Ids of `btf`'s own types of `kind` whose essential name equals
    /// `essential` (in no particular order). `btf` must be the BTF this
    /// index was built from.
    pub fn find<'i, 'a: 'i>(
        &'i self,
        btf: &'i Btf<'a>,
        essential: &'i str,
        kind: Kind,
    ) -> impl Iterator<Item = TypeId> + 'i {
        let e = essential.as_bytes();
        self.table
            .iter_hash(hash(kind, e))
            .copied()
            .filter(move |&id| key(btf, id) == Some((kind, e)))
    }
}
