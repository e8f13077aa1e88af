//! Maps as an object defines them, and the internal maps libbpf makes for
//! global data and `.kconfig`. The definitions are read by `btf_maps.rs`
//! (`.maps`) and `legacy_maps.rs` (`maps`).

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use super::DataSection;
use super::kinds::MapType;
use crate::btf::{Btf, TypeId};
use crate::id::{FuncIndex, MapIndex, SectionIndex};

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
