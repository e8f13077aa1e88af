//! Map definitions: BTF-defined (`.maps`), legacy (`maps`), and the
//! internal maps libbpf makes for global data and `.kconfig`.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SymbolSection};

use super::error::{Found, ObjectError, ObjectErrorKind};
use super::kinds::MapType;
use super::parse::{Elf, PResult, err, fit, try_push};
use super::{DataSection, Function};
use crate::btf::{Btf, Kind, Type, TypeId};
use crate::error::{Error, ErrorKind};
use crate::id::{FuncIndex, MapIndex, SectionIndex};
use crate::limits::MAX_INNER_MAP_DEPTH;

/// `BPF_F_RDONLY_PROG`.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;
/// Longest map name the kernel keeps (`BPF_OBJ_NAME_LEN` - 1).
pub const MAX_MAP_NAME: usize = 15;

/// Where a map definition came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapKind {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// The internal map of a global-data section (index into
    /// [`Object::data`](super::Object::data)).
    Data(usize),
    /// The internal `.kconfig` map.
    Kconfig,
}

impl MapKind {
    /// Internal (global data or kconfig) rather than user-defined.
    pub fn is_internal(&self) -> bool {
        matches!(self, MapKind::Data(_) | MapKind::Kconfig)
    }
}

/// `pinning` of a BTF-defined map (`LIBBPF_PIN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pinning {
    /// Not pinned.
    #[default]
    None,
    /// Pinned under the pin directory by map name.
    ByName,
}

/// What fills a map-in-map or prog-array slot at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapValues {
    /// A map of [`Object::maps`](super::Object::maps).
    Map(MapIndex),
    /// A program of [`Object::functions`](super::Object::functions).
    Program(FuncIndex),
}

/// A map definition.
#[derive(Debug, Clone)]
pub struct Map<'a> {
    /// Name: the symbol, or libbpf's internal-map name (`obj.data`).
    pub name: Cow<'a, str>,
    /// Where it came from.
    pub kind: MapKind,
    /// ELF section holding its definition or data.
    pub section: Option<SectionIndex>,
    /// Offset of the definition in `.maps`/`maps`.
    pub sec_offset: u32,
    /// Map type.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum entries.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: u32,
    /// NUMA node.
    pub numa_node: u32,
    /// `map_extra` (bloom filter hashes, arena address).
    pub map_extra: u64,
    /// Pinning.
    pub pinning: Pinning,
    /// Key type in the object's BTF.
    pub key_type: Option<TypeId>,
    /// Value type in the object's BTF.
    pub value_type: Option<TypeId>,
    /// The map's BTF VAR (BTF-defined) or DATASEC (internal).
    pub btf_id: Option<TypeId>,
    /// Inner map template of a map-in-map.
    pub inner: Option<Box<Map<'a>>>,
    /// `__array(values, ...)` initializers: slot → map or program.
    pub init: Vec<(u32, MapValues)>,
}

impl<'a> Map<'a> {
    pub(super) fn empty(name: Cow<'a, str>, kind: MapKind) -> Map<'a> {
        Map {
            name,
            kind,
            section: None,
            sec_offset: 0,
            map_type: MapType::UNSPEC,
            key_size: 0,
            value_size: 0,
            max_entries: 0,
            map_flags: 0,
            numa_node: 0,
            map_extra: 0,
            pinning: Pinning::None,
            key_type: None,
            value_type: None,
            btf_id: None,
            inner: None,
            init: Vec::new(),
        }
    }

    /// libbpf's internal map for a global-data section. It is mmapable
    /// only when its DATASEC holds a non-static variable, as libbpf 1.7's
    /// `map_is_mmapable` decides (1.1 made every one mmapable): string
    /// literal sections and static-only sections are not.
    pub(super) fn internal(
        obj_name: &str,
        d: &DataSection<'a>,
        i: usize,
        btf: Option<&Btf<'a>>,
    ) -> Map<'a> {
        let mut m = Map::empty(
            Cow::Owned(internal_map_name(obj_name, d.name)),
            MapKind::Data(i),
        );
        m.section = Some(d.index);
        m.map_type = MapType::ARRAY;
        m.key_size = 4;
        m.value_size = d.size;
        m.max_entries = 1;
        if d.name.starts_with(".rodata") {
            m.map_flags |= BPF_F_RDONLY_PROG;
        }
        if mmapable(btf, d.datasec) {
            m.map_flags |= BPF_F_MMAPABLE;
        }
        m.btf_id = d.datasec;
        m
    }

    /// libbpf's internal `.kconfig` map, described by DATASEC `datasec`
    /// (mmapable by the same rule as other internal maps).
    pub(super) fn kconfig(
        obj_name: &str,
        size: u32,
        btf: Option<&Btf<'a>>,
        datasec: Option<TypeId>,
    ) -> Map<'a> {
        let mut m = Map::empty(
            Cow::Owned(internal_map_name(obj_name, ".kconfig")),
            MapKind::Kconfig,
        );
        m.map_type = MapType::ARRAY;
        m.key_size = 4;
        m.value_size = size;
        m.max_entries = 1;
        m.map_flags = BPF_F_RDONLY_PROG;
        if mmapable(btf, datasec) {
            m.map_flags |= BPF_F_MMAPABLE;
        }
        m.btf_id = datasec;
        m
    }
}

/// libbpf's `map_is_mmapable`: the DATASEC has a variable that is not
/// static.
fn mmapable(btf: Option<&Btf<'_>>, datasec: Option<TypeId>) -> bool {
    let (Some(btf), Some(ds)) = (btf, datasec) else {
        return false;
    };
    btf.get(ds).is_some_and(|t| {
        t.datasec_entries().any(|e| {
            btf.get(e.type_id)
                .and_then(|v| v.var_linkage())
                .is_some_and(|l| l != 0)
        })
    })
}

/// libbpf's name for an internal map: as much of the object name as fits
/// before the section name in 15 characters (none for dotted sections
/// such as `.rodata.str1.1`), then non-identifier characters as `_`.
pub fn internal_map_name(obj_name: &str, section: &str) -> String {
    let sfx_len = section.len().max(7);
    let dotted = section.get(1..).is_some_and(|r| r.contains('.'));
    let pfx_len = if dotted {
        0
    } else {
        MAX_MAP_NAME.saturating_sub(sfx_len).min(obj_name.len())
    };
    let mut name = String::new();
    for c in obj_name
        .chars()
        .take(pfx_len)
        .chain(section.chars())
        .take(MAX_MAP_NAME)
    {
        name.push(if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            c
        } else {
            '_'
        });
    }
    name
}

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

#[cfg(test)]
mod tests {
    use super::super::error::{Found, ObjectErrorKind};
    use super::super::{MapKind, Object};
    use super::MapType;

    /// `__ulong(name, N)` reads as `__uint` would, past 32 bits for
    /// `map_extra` (ENUM64), in both byte orders.
    #[test]
    fn ulong_attributes() {
        for bytes in [
            include_bytes!("../../../tests/fixtures/libbpf17/ulong.bpf-el.o").as_slice(),
            include_bytes!("../../../tests/fixtures/libbpf17/ulong.bpf-eb.o").as_slice(),
        ] {
            let obj = Object::parse(bytes, "ulong").unwrap();
            let got: alloc::vec::Vec<_> = obj
                .maps
                .iter()
                .filter(|m| m.kind == MapKind::Btf)
                .map(|m| {
                    (
                        &*m.name,
                        m.map_type,
                        m.max_entries,
                        m.map_flags,
                        m.map_extra,
                    )
                })
                .collect();
            assert_eq!(
                got,
                [
                    ("counts", MapType::ARRAY, 8, 1024, 0),
                    ("bloom", MapType::BLOOM_FILTER, 64, 0, 3),
                    ("wide", MapType::ARENA, 1, 1024, 1 << 32),
                ]
            );
        }
    }

    #[test]
    fn an_enum_of_two_values_is_not_a_ulong() {
        for bytes in [
            include_bytes!("../../../tests/fixtures/bad/map_ulong.bpf-el.o").as_slice(),
            include_bytes!("../../../tests/fixtures/bad/map_ulong.bpf-eb.o").as_slice(),
        ] {
            let e = Object::parse(bytes, "bad").unwrap_err();
            assert_eq!(e.section, Some(".maps"));
            assert_eq!(
                e.kind,
                ObjectErrorKind::BadMapDef {
                    map: "hashes",
                    attr: "map_extra",
                    expected: "an enum of exactly one value (__ulong)",
                    found: Found::Value(2),
                }
            );
        }
    }

    fn legacy_error(bytes: &[u8]) -> (alloc::string::String, ObjectErrorKind<'_>) {
        let e = Object::parse(bytes, "bad").unwrap_err();
        assert_eq!(e.section, Some("maps"));
        (alloc::format!("{e}"), e.kind)
    }

    macro_rules! both {
        ($name:literal) => {
            [
                include_bytes!(concat!("../../../tests/fixtures/bad/", $name, ".bpf-el.o"))
                    .as_slice(),
                include_bytes!(concat!("../../../tests/fixtures/bad/", $name, ".bpf-eb.o"))
                    .as_slice(),
            ]
        };
    }

    #[test]
    fn legacy_definition_with_unknown_nonzero_fields_names_the_map() {
        for bytes in both!("legacy_map_extra") {
            let (msg, kind) = legacy_error(bytes);
            assert!(
                matches!(
                    kind,
                    ObjectErrorKind::BadMapDef {
                        map: "extended",
                        attr: "",
                        found: Found::Value(9),
                        ..
                    }
                ),
                "{kind:?}"
            );
            assert!(msg.starts_with("section 'maps': map 'extended': "), "{msg}");
            assert!(msg.contains("unrecognized fields"), "{msg}");
        }
    }

    #[test]
    fn iproute2_pinning_is_refused_by_name() {
        for bytes in both!("legacy_map_pinning") {
            let (msg, kind) = legacy_error(bytes);
            assert!(
                matches!(
                    kind,
                    ObjectErrorKind::BadMapDef {
                        map: "tc_counts",
                        attr: "pinning",
                        found: Found::Value(2),
                        ..
                    }
                ),
                "{kind:?}"
            );
            assert!(
                msg.contains("map 'tc_counts': attribute 'pinning'"),
                "{msg}"
            );
            assert!(msg.contains("bpf_elf_map"), "{msg}");
        }
    }

    #[test]
    fn legacy_definitions_of_different_sizes_name_the_first_misfit() {
        for bytes in both!("legacy_map_sizes") {
            let (msg, kind) = legacy_error(bytes);
            // (20 + 24) / 2 = 22 bytes a definition; short_def's symbol is 20.
            assert!(
                matches!(
                    kind,
                    ObjectErrorKind::BadMapDef {
                        map: "short_def",
                        found: Found::Value(20),
                        ..
                    }
                ),
                "{kind:?}"
            );
            assert!(msg.contains("map 'short_def'"), "{msg}");
        }
    }

    #[test]
    fn arena_maps_open_and_arena_data_is_refused_by_name() {
        for bytes in [
            include_bytes!("../../../tests/fixtures/libbpf17/arena.bpf-el.o").as_slice(),
            include_bytes!("../../../tests/fixtures/libbpf17/arena.bpf-eb.o").as_slice(),
        ] {
            let obj = Object::parse(bytes, "arena").unwrap();
            let m = obj.maps.iter().find(|m| m.name == "arena").unwrap();
            assert_eq!(
                (
                    m.map_type,
                    m.key_size,
                    m.value_size,
                    m.max_entries,
                    m.map_flags,
                    m.map_extra
                ),
                (MapType::ARENA, 0, 0, 4, super::BPF_F_MMAPABLE, 0)
            );
        }
        for bytes in [
            include_bytes!("../../../tests/fixtures/libbpf17/arena_data.bpf-el.o").as_slice(),
            include_bytes!("../../../tests/fixtures/libbpf17/arena_data.bpf-eb.o").as_slice(),
        ] {
            let e = Object::parse(bytes, "arena_data").unwrap_err();
            assert_eq!(e.section, Some(".addr_space.1"));
            assert!(matches!(e.kind, ObjectErrorKind::Unsupported { .. }));
            assert_eq!(
                alloc::format!("{e}"),
                "section '.addr_space.1': global data in a BPF arena (__arena variables) is not \
                 supported"
            );
        }
    }
}
