//! BTF-defined maps (`.maps`): each variable's definition read from its
//! BTF (`__uint`, `__type`, `__array` and `__ulong` fields, inner maps),
//! and the `.maps` slot initializers of map-in-map and program arrays.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SymbolSection};

use super::Function;
use super::error::{Found, ObjectError, ObjectErrorKind};
use super::kinds::MapType;
use super::maps::{Map, MapKind, MapValues, Pinning};
use super::parse::{Elf, PResult, err, fit, try_push};
use crate::btf::{Btf, Kind, Type, TypeId};
use crate::error::{Error, ErrorKind};
use crate::id::{FuncIndex, MapIndex, SectionIndex};
use crate::limits::MAX_INNER_MAP_DEPTH;

/// Where a malformed map definition is reported: `.maps`, naming the map.
#[derive(Clone, Copy)]
struct Def<'a> {
    map: &'a str,
}

impl<'a> Def<'a> {
    fn bad(self, attr: &'a str, expected: &'static str, found: Found<'a>) -> ObjectError<'a> {
        err(
            ".maps",
            ObjectErrorKind::BadMapDef {
                map: self.map,
                attr,
                expected,
                found,
            },
        )
    }

    /// A BTF lookup that failed inside a map definition.
    fn btf(self) -> impl Fn(Error) -> ObjectError<'a> {
        |e| err(".maps", e.into())
    }
}

const UINT: &str = "a pointer to an array (__uint)";
const TYPE: &str = "a pointer to the type (__type)";
const ARRAY: &str = "a zero-length array of pointers (__array)";

/// `__uint(name, N)` is encoded as a pointer to an array of N elements.
fn uint_field<'a>(btf: &Btf<'a>, t: TypeId, d: Def<'a>, attr: &'a str) -> PResult<'a, u32> {
    let p = btf
        .type_by_id(btf.skip_mods_and_typedefs(t).map_err(d.btf())?)
        .map_err(d.btf())?;
    if p.kind() != Kind::Ptr {
        return Err(d.bad(attr, UINT, Found::Kind(p.kind())));
    }
    let a = btf.type_by_id(p.type_id()).map_err(d.btf())?;
    a.as_array()
        .map(|a| a.nelems)
        .ok_or(d.bad(attr, UINT, Found::Kind(a.kind())))
}

const ULONG: &str = "a pointer to an array (__uint) or an enum of one value (__ulong)";

/// An attribute given with `__uint(name, N)` or `__ulong(name, N)`: the
/// latter is an ENUM or ENUM64 whose one enumerator is N (libbpf's
/// `get_map_field_long`). ENUM values widen by the enum's signedness.
fn long_field<'a>(btf: &Btf<'a>, t: TypeId, d: Def<'a>, attr: &'a str) -> PResult<'a, u64> {
    let e = btf
        .type_by_id(btf.skip_mods_and_typedefs(t).map_err(d.btf())?)
        .map_err(d.btf())?;
    match e.kind() {
        Kind::Ptr => uint_field(btf, t, d, attr).map(u64::from),
        Kind::Enum | Kind::Enum64 => {
            let mut values = e.enumerators();
            match (values.next(), values.next()) {
                (Some(v), None) => Ok(v.value),
                _ => Err(d.bad(
                    attr,
                    "an enum of exactly one value (__ulong)",
                    Found::Value(u64::from(e.vlen())),
                )),
            }
        }
        k => Err(d.bad(attr, ULONG, Found::Kind(k))),
    }
}

/// A 32-bit attribute, from `__uint` or (as libbpf 1.7 accepts) `__ulong`.
fn int_field<'a>(btf: &Btf<'a>, t: TypeId, d: Def<'a>, attr: &'a str) -> PResult<'a, u32> {
    let v = long_field(btf, t, d, attr)?;
    u32::try_from(v).map_err(|_| d.bad(attr, "a value that fits 32 bits", Found::Value(v)))
}

/// Parses one BTF map definition struct; also returns where its `values`
/// initializers start, for a map-in-map or prog array that has them.
fn parse_def<'a>(
    btf: &Btf<'a>,
    name: Cow<'a, str>,
    def: &Type<'a>,
    d: Def<'a>,
    depth: u32,
) -> PResult<'a, (Map<'a>, Option<u32>)> {
    if def.kind() != Kind::Struct {
        return Err(d.bad("", "a struct", Found::Kind(def.kind())));
    }
    if depth > MAX_INNER_MAP_DEPTH {
        return Err(d.bad(
            "values",
            "inner maps nested at most 1 deep",
            Found::Value(u64::from(depth)),
        ));
    }
    let mut m = Map::empty(name, MapKind::Btf);
    let mut values_off = None;
    for mem in def.members() {
        let field = btf.str_at(mem.name_off).map_err(d.btf())?;
        match field {
            "type" => m.map_type = MapType(int_field(btf, mem.type_id, d, field)?),
            "max_entries" => m.max_entries = int_field(btf, mem.type_id, d, field)?,
            "map_flags" => m.map_flags = int_field(btf, mem.type_id, d, field)?,
            "numa_node" => m.numa_node = int_field(btf, mem.type_id, d, field)?,
            "map_extra" => m.map_extra = long_field(btf, mem.type_id, d, field)?,
            "key_size" => m.key_size = int_field(btf, mem.type_id, d, field)?,
            "value_size" => m.value_size = int_field(btf, mem.type_id, d, field)?,
            "pinning" => {
                m.pinning = match int_field(btf, mem.type_id, d, field)? {
                    0 => Pinning::None,
                    1 => Pinning::ByName,
                    v => {
                        return Err(d.bad(
                            field,
                            "LIBBPF_PIN_NONE (0) or LIBBPF_PIN_BY_NAME (1)",
                            Found::Value(u64::from(v)),
                        ));
                    }
                }
            }
            "key" | "value" => {
                let p = btf
                    .type_by_id(btf.skip_mods_and_typedefs(mem.type_id).map_err(d.btf())?)
                    .map_err(d.btf())?;
                if p.kind() != Kind::Ptr {
                    return Err(d.bad(field, TYPE, Found::Kind(p.kind())));
                }
                let size = btf.resolve_size(p.type_id()).map_err(d.btf())?;
                if field == "key" {
                    m.key_size = size;
                    m.key_type = Some(p.type_id());
                } else {
                    m.value_size = size;
                    m.value_type = Some(p.type_id());
                }
            }
            "values" => {
                let a = btf
                    .type_by_id(btf.skip_mods_and_typedefs(mem.type_id).map_err(d.btf())?)
                    .map_err(d.btf())?;
                let arr = a
                    .as_array()
                    .ok_or(d.bad(field, ARRAY, Found::Kind(a.kind())))?;
                if arr.nelems != 0 {
                    return Err(d.bad(field, ARRAY, Found::Value(u64::from(arr.nelems))));
                }
                let p = btf
                    .type_by_id(btf.skip_mods_and_typedefs(arr.elem_type).map_err(d.btf())?)
                    .map_err(d.btf())?;
                if p.kind() != Kind::Ptr {
                    return Err(d.bad(field, ARRAY, Found::Kind(p.kind())));
                }
                let inner = btf
                    .type_by_id(btf.skip_mods_and_typedefs(p.type_id()).map_err(d.btf())?)
                    .map_err(d.btf())?;
                m.value_size = 4;
                values_off = Some(mem.bit_offset / 8);
                match inner.kind() {
                    Kind::FuncProto if m.map_type == MapType::PROG_ARRAY => {}
                    Kind::Struct
                        if matches!(m.map_type, MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS) =>
                    {
                        let mut iname = String::from(&*m.name);
                        iname.push_str(".inner");
                        let (im, _) =
                            parse_def(btf, Cow::Owned(iname), &inner, d, depth.saturating_add(1))?;
                        m.inner = Some(Box::new(im));
                    }
                    k => {
                        return Err(d.bad(
                            field,
                            "pointers to a map struct (map-in-map, declared after 'type') \
                             or to functions (prog array)",
                            Found::Kind(k),
                        ));
                    }
                }
            }
            _ => {
                return Err(d.bad(
                    "",
                    "made of known attributes (type, max_entries, map_flags, numa_node, \
                     map_extra, key_size, value_size, key, value, pinning, values)",
                    Found::Name(field),
                ));
            }
        }
    }
    Ok((m, values_off))
}

/// The BTF-defined maps of `.maps`, by offset (as libbpf). Returns where the
/// `values` initializers of each map that has them start (map, byte
/// offset in its definition).
pub(super) fn btf_maps<'a>(
    elf: &Elf<'a>,
    sec: SectionIndex,
    btf: &Btf<'a>,
    out: &mut Vec<Map<'a>>,
) -> PResult<'a, Vec<(MapIndex, u32)>> {
    let mut starts = Vec::new();
    let ds = btf.find_by_name_kind(".maps", Kind::Datasec).ok_or(err(
        ".maps",
        Error::new(ErrorKind::MissingSection(".maps DATASEC in .BTF"), 0).into(),
    ))?;
    let in_btf = |e: Error| err(".maps", e.into());
    let ds = btf.type_by_id(ds).map_err(in_btf)?;
    // libbpf lists the maps by offset in `.maps` (btf_fixup_datasec sorts
    // the DATASEC by its symbols' offsets before the maps are read);
    // clang emits both in one order, other producers need not.
    let mut entries = Vec::new();
    for entry in ds.datasec_entries() {
        let var = btf.type_by_id(entry.type_id).map_err(in_btf)?;
        let name = btf.name(&var).map_err(in_btf)?;
        let offset = match elf.symbols().find(|s| {
            s.section() == SymbolSection::Section(object::SectionIndex(sec.0))
                && s.name() == Ok(name)
        }) {
            Some(s) => fit(s.address(), ".maps", "symbol offset")?,
            None => entry.offset,
        };
        try_push(&mut entries, (offset, entry.type_id, var, name))?;
    }
    crate::order::sort_by_key(&mut entries, |e| e.0);
    for (offset, type_id, var, name) in entries {
        let d = Def { map: name };
        if var.kind() != Kind::Var {
            return Err(d.bad("", "a VAR in the .maps DATASEC", Found::Kind(var.kind())));
        }
        let def = btf
            .type_by_id(btf.skip_mods_and_typedefs(var.type_id()).map_err(in_btf)?)
            .map_err(in_btf)?;
        let (mut m, values_off) = parse_def(btf, Cow::Borrowed(name), &def, d, 0)?;
        m.btf_id = Some(type_id);
        m.section = Some(sec);
        m.sec_offset = offset;
        if let Some(v) = values_off {
            try_push(&mut starts, (MapIndex(out.len()), v))?;
        }
        try_push(out, m)?;
    }
    Ok(starts)
}

/// Resolves `.maps` relocations into slot initializers; `starts` says
/// where each map's `values` begin (from [`btf_maps`]).
pub(super) fn link_initializers<'a>(
    elf: &Elf<'a>,
    sec: SectionIndex,
    starts: &[(MapIndex, u32)],
    maps: &mut [Map<'a>],
    functions: &[Function<'a>],
) -> PResult<'a, ()> {
    let Ok(s) = elf.section_by_index(object::SectionIndex(sec.0)) else {
        return Ok(());
    };
    for (off, r) in s.relocations() {
        let RelocationTarget::Symbol(si) = r.target() else {
            continue;
        };
        let Ok(sym) = elf.symbol_by_index(si) else {
            continue;
        };
        let symbol = sym.name().unwrap_or("");
        let bad = |map: &'a str, expected| {
            err(
                ".maps",
                ObjectErrorKind::BadInitializer {
                    map,
                    symbol,
                    expected,
                },
            )
        };
        let off = fit(off, ".maps", "relocation offset")?;
        // The map whose definition holds this slot: the last one starting at or before it.
        let Some(mi) = maps
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == MapKind::Btf && m.sec_offset <= off)
            .max_by_key(|(_, m)| m.sec_offset)
            .map(|(i, _)| i)
        else {
            continue;
        };
        let (map_name, map_off, max_entries) = maps.get(mi).map_or(("", 0, 0), |m| {
            (super::parse::borrowed(&m.name), m.sec_offset, m.max_entries)
        });
        let Some(&(_, vstart)) = starts.iter().find(|(m, _)| m.index() == mi) else {
            return Err(bad(map_name, "a map with a 'values' attribute"));
        };
        let slot = off.saturating_sub(map_off).saturating_sub(vstart) / 8;
        let target = if let Some(t) = maps
            .iter()
            .position(|m| m.kind == MapKind::Btf && m.name == symbol)
        {
            MapValues::Map(MapIndex(t))
        } else if let Some(f) = functions.iter().position(|f| f.name == symbol) {
            MapValues::Program(FuncIndex(f))
        } else {
            return Err(bad(map_name, "a BTF-defined map or a program"));
        };
        if slot >= max_entries {
            return Err(bad(map_name, "a slot below max_entries"));
        }
        if let Some(m) = maps.get_mut(mi) {
            try_push(&mut m.init, (slot, target))?;
        }
    }
    Ok(())
}
