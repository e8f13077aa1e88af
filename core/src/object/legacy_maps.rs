//! Legacy `maps` section definitions (`struct bpf_map_def`), as libbpf
//! 0.x read them, with iproute2's `struct bpf_elf_map` extras refused by
//! name.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, SymbolSection};

use super::error::{Found, ObjectErrorKind};
use super::kinds::MapType;
use super::maps::{Map, MapKind};
use super::parse::{Elf, PResult, err, fit, try_push};
use crate::bytes::{Endian, u32_at};
use crate::id::SectionIndex;

/// `sizeof(struct bpf_map_def)`: type, key_size, value_size, max_entries,
/// map_flags.
const MAP_DEF_SIZE: usize = 20;
/// `sizeof(struct bpf_elf_map)` (iproute2): `bpf_map_def`'s five words,
/// then id, pinning, inner_id, inner_idx.
const ELF_MAP_SIZE: usize = 36;
const ELF_MAP_EXTRA: [&str; 4] = ["id", "pinning", "inner_id", "inner_idx"];

/// Legacy `struct bpf_map_def` entries of the `maps` section. As libbpf
/// did, every definition is the section size over the number of map
/// symbols, and each must lie inside the section; a symbol of another
/// size, or bytes past `struct bpf_map_def` that are not zero, are
/// refused naming the map: iproute2's `struct bpf_elf_map` pinning and
/// inner-map fields are not implemented.
pub(super) fn legacy_maps<'a>(
    elf: &Elf<'a>,
    sec: SectionIndex,
    e: Endian,
    out: &mut Vec<Map<'a>>,
) -> PResult<'a, ()> {
    let Ok(s) = elf.section_by_index(object::SectionIndex(sec.0)) else {
        return Ok(());
    };
    let data = s.data().unwrap_or(&[]);
    let mut syms: Vec<_> = elf
        .symbols()
        .filter(|s| {
            s.section() == SymbolSection::Section(object::SectionIndex(sec.0))
                && !s.name().unwrap_or("").is_empty()
        })
        .collect();
    crate::order::sort_by_key(&mut syms, |s| s.address());
    let bad = |map, attr, expected, found| {
        err(
            "maps",
            ObjectErrorKind::BadMapDef {
                map,
                attr,
                expected,
                found,
            },
        )
    };
    let Some(first) = syms.first() else {
        return Ok(());
    };
    let size = data.len();
    let def_size = size.checked_div(syms.len()).unwrap_or(0);
    if !size.is_multiple_of(syms.len()) {
        return Err(bad(
            first.name().unwrap_or(""),
            "",
            "one of equal-sized definitions filling the section (its size over the number of maps)",
            Found::Value(size as u64),
        ));
    }
    for sym in syms {
        let name = sym.name().unwrap_or("");
        let off = fit(sym.address(), "maps", "symbol offset")?;
        let at = usize::try_from(off).unwrap_or(usize::MAX);
        let def = at
            .checked_add(def_size)
            .and_then(|end| data.get(at..end))
            .filter(|d| d.len() >= 16);
        let Some(def) = def else {
            return Err(bad(
                name,
                "",
                "a struct bpf_map_def (at least 16 bytes) inside the section",
                Found::Nothing,
            ));
        };
        if sym.size() != 0 && sym.size() != def_size as u64 {
            return Err(bad(
                name,
                "",
                "the size of every definition (the section's size over the number of maps)",
                Found::Value(sym.size()),
            ));
        }
        let w = |i: usize| u32_at(def, i.saturating_mul(4), e);
        if def_size > MAP_DEF_SIZE {
            let extra = (MAP_DEF_SIZE / 4..def_size.div_ceil(4))
                .map(|i| (i, w(i).unwrap_or(0)))
                .find(|&(_, v)| v != 0);
            if let Some((i, v)) = extra {
                // A trailing partial word reads as zero: check its bytes.
                return Err(if def_size == ELF_MAP_SIZE {
                    let field = ELF_MAP_EXTRA
                        .get(i.saturating_sub(MAP_DEF_SIZE / 4))
                        .copied()
                        .unwrap_or("");
                    bad(
                        name,
                        field,
                        "0: iproute2's struct bpf_elf_map id, pinning and inner maps are not \
                         supported (pin a BTF-defined map with LIBBPF_PIN_BY_NAME)",
                        Found::Value(u64::from(v)),
                    )
                } else {
                    bad(
                        name,
                        "",
                        "a struct bpf_map_def (20 bytes) followed only by zeros (libbpf 1.x \
                         refuses unrecognized fields)",
                        Found::Value(u64::from(v)),
                    )
                });
            }
            if def
                .get(def_size & !3..)
                .is_some_and(|t| t.iter().any(|&b| b != 0))
            {
                return Err(bad(
                    name,
                    "",
                    "a struct bpf_map_def (20 bytes) followed only by zeros (libbpf 1.x \
                     refuses unrecognized fields)",
                    Found::Nothing,
                ));
            }
        }
        let (Some(t), Some(k), Some(v), Some(n)) = (w(0), w(1), w(2), w(3)) else {
            return Err(bad(
                name,
                "",
                "a struct bpf_map_def (at least 16 bytes) inside the section",
                Found::Nothing,
            ));
        };
        let mut m = Map::empty(Cow::Borrowed(name), MapKind::Legacy);
        m.section = Some(sec);
        m.sec_offset = off;
        m.map_type = MapType(t);
        m.key_size = k;
        m.value_size = v;
        m.max_entries = n;
        m.map_flags = w(4).unwrap_or(0);
        try_push(out, m)?;
    }
    Ok(())
}
