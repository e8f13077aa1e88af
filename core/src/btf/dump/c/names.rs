//! Names as the header prints them: `___N` suffixes for duplicates,
//! counted separately for tags and for typedef/enumerator identifiers.

use super::*;

/// A name as printed: the BTF string plus an optional `___N` suffix.
#[derive(Clone, Copy)]
pub(super) struct Ident<'a> {
    pub(super) name: &'a [u8],
    /// Occurrence number; 0 or 1 means "no suffix".
    pub(super) dup: u32,
}

impl<'a> Ident<'a> {
    pub(super) const EMPTY: Ident<'static> = Ident { name: b"", dup: 0 };

    pub(super) fn plain(name: &'a [u8]) -> Self {
        Ident { name, dup: 0 }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.name.is_empty()
    }
}

/// Name → occurrence count, keyed by the string-table bytes.
#[derive(Default)]
pub(super) struct NameCounts<'a> {
    table: HashTable<(&'a [u8], u32)>,
}

pub(super) fn name_hash(name: &[u8]) -> u64 {
    pub(super) const K: u64 = 0x9e37_79b9_7f4a_7c15;
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
    pub(super) fn bump(&mut self, name: &'a [u8]) -> u32 {
        let h = name_hash(name);
        if let Some(e) = self.table.find_mut(h, |e| e.0 == name) {
            e.1 = e.1.saturating_add(1);
            return e.1;
        }
        self.table.insert_unique(h, (name, 1), |e| name_hash(e.0));
        1
    }
}

impl<'a, 'b> CDump<'a, 'b> {
    pub(super) fn write_ident(&mut self, id: Ident<'_>) -> Res {
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

    /// libbpf's `btf_dump_resolve_name`: the first request for a type's
    /// name fixes its suffix.
    pub(super) fn resolve_name(&mut self, id: u32, idents: bool) -> Res<Ident<'a>> {
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

    pub(super) fn type_name(&mut self, id: u32) -> Res<Ident<'a>> {
        self.resolve_name(id, false)
    }

    pub(super) fn ident_name(&mut self, id: u32) -> Res<Ident<'a>> {
        self.resolve_name(id, true)
    }
}

/// Decimal digits of `v` into `buf`; returns how many.
pub(super) fn fmt_u32(mut v: u32, buf: &mut [u8; 10]) -> usize {
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
