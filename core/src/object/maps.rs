//! Map definitions: BTF-defined (`.maps`), legacy (`maps`), and the
//! internal maps libbpf makes for global data and `.kconfig`.

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use object::read::elf::ElfFile64;
use object::{
    Endianness, Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SectionIndex,
    SymbolSection,
};

use super::kinds::MapType;
use super::{CodeSection, DataSection, Function, try_push};
use crate::btf::{Btf, Kind, Type, TypeId};
use crate::bytes::{Endian, u32_at};
use crate::error::{Error, ErrorKind, Result};
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
    /// Index into [`Object::maps`](super::Object::maps).
    Map(usize),
    /// Index into [`Object::functions`](super::Object::functions).
    Program(usize),
}

/// A map definition.
#[derive(Debug, Clone)]
pub struct Map<'a> {
    /// Name: the symbol, or libbpf's internal-map name (`obj.data`).
    pub name: Cow<'a, str>,
    /// Where it came from.
    pub kind: MapKind,
    /// ELF section holding its definition or data.
    pub section: Option<usize>,
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

fn bad(id: TypeId) -> Error {
    Error::new(ErrorKind::BadMapDef(id), 0)
}

impl<'a> Map<'a> {
    fn empty(name: Cow<'a, str>, kind: MapKind) -> Map<'a> {
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

    /// libbpf's internal map for a global-data section.
    pub(super) fn internal(obj_name: &str, d: &DataSection<'a>, i: usize) -> Map<'a> {
        let mut m = Map::empty(
            Cow::Owned(internal_map_name(obj_name, d.name)),
            MapKind::Data(i),
        );
        m.section = Some(d.index);
        m.map_type = MapType::ARRAY;
        m.key_size = 4;
        m.value_size = d.size;
        m.max_entries = 1;
        m.map_flags = BPF_F_MMAPABLE;
        if d.name.starts_with(".rodata") {
            m.map_flags |= BPF_F_RDONLY_PROG;
        }
        m.btf_id = d.datasec;
        m
    }

    /// libbpf's internal `.kconfig` map.
    pub(super) fn kconfig(obj_name: &str, size: u32) -> Map<'a> {
        let mut m = Map::empty(
            Cow::Owned(internal_map_name(obj_name, ".kconfig")),
            MapKind::Kconfig,
        );
        m.map_type = MapType::ARRAY;
        m.key_size = 4;
        m.value_size = size;
        m.max_entries = 1;
        m.map_flags = BPF_F_MMAPABLE | BPF_F_RDONLY_PROG;
        m
    }
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

/// `__uint(name, N)` is encoded as a pointer to an array of N elements.
fn uint_field(btf: &Btf<'_>, t: TypeId, var: TypeId) -> Result<u32> {
    let p = btf.type_by_id(btf.skip_mods_and_typedefs(t)?)?;
    if p.kind() != Kind::Ptr {
        return Err(bad(var));
    }
    let a = btf.type_by_id(p.type_id())?;
    a.as_array().map(|a| a.nelems).ok_or(bad(var))
}

/// Parses one BTF map definition struct.
fn parse_def<'a>(
    btf: &Btf<'a>,
    name: Cow<'a, str>,
    def: &Type<'a>,
    var: TypeId,
    depth: u32,
) -> Result<(Map<'a>, Option<u32>)> {
    if def.kind() != Kind::Struct || depth > MAX_INNER_MAP_DEPTH {
        return Err(bad(var));
    }
    let mut m = Map::empty(name, MapKind::Btf);
    let mut values_off = None;
    for mem in def.members() {
        let field = btf.str_at(mem.name_off)?;
        match field {
            "type" => m.map_type = MapType(uint_field(btf, mem.type_id, var)?),
            "max_entries" => m.max_entries = uint_field(btf, mem.type_id, var)?,
            "map_flags" => m.map_flags = uint_field(btf, mem.type_id, var)?,
            "numa_node" => m.numa_node = uint_field(btf, mem.type_id, var)?,
            "map_extra" => m.map_extra = u64::from(uint_field(btf, mem.type_id, var)?),
            "key_size" => m.key_size = uint_field(btf, mem.type_id, var)?,
            "value_size" => m.value_size = uint_field(btf, mem.type_id, var)?,
            "pinning" => {
                m.pinning = match uint_field(btf, mem.type_id, var)? {
                    0 => Pinning::None,
                    1 => Pinning::ByName,
                    _ => return Err(bad(var)),
                }
            }
            "key" | "value" => {
                let p = btf.type_by_id(btf.skip_mods_and_typedefs(mem.type_id)?)?;
                if p.kind() != Kind::Ptr {
                    return Err(bad(var));
                }
                let size = btf.resolve_size(p.type_id())?;
                if field == "key" {
                    m.key_size = size;
                    m.key_type = Some(p.type_id());
                } else {
                    m.value_size = size;
                    m.value_type = Some(p.type_id());
                }
            }
            "values" => {
                let a = btf.type_by_id(btf.skip_mods_and_typedefs(mem.type_id)?)?;
                let arr = a.as_array().filter(|a| a.nelems == 0).ok_or(bad(var))?;
                let p = btf.type_by_id(btf.skip_mods_and_typedefs(arr.elem_type)?)?;
                if p.kind() != Kind::Ptr {
                    return Err(bad(var));
                }
                let inner = btf.type_by_id(btf.skip_mods_and_typedefs(p.type_id())?)?;
                m.value_size = 4;
                values_off = Some(mem.bit_offset / 8);
                match inner.kind() {
                    Kind::FuncProto if m.map_type == MapType::PROG_ARRAY => {}
                    Kind::Struct
                        if matches!(m.map_type, MapType::ARRAY_OF_MAPS | MapType::HASH_OF_MAPS) =>
                    {
                        let mut iname = String::from(&*m.name);
                        iname.push_str(".inner");
                        let (im, _) = parse_def(
                            btf,
                            Cow::Owned(iname),
                            &inner,
                            var,
                            depth.saturating_add(1),
                        )?;
                        m.inner = Some(Box::new(im));
                    }
                    _ => return Err(bad(var)),
                }
            }
            _ => return Err(bad(var)),
        }
    }
    Ok((m, values_off))
}

/// The BTF-defined maps of `.maps`, in DATASEC order.
pub(super) fn btf_maps<'a>(
    elf: &ElfFile64<'a, Endianness, &'a [u8]>,
    sec: usize,
    btf: &Btf<'a>,
    out: &mut Vec<Map<'a>>,
) -> Result<()> {
    let ds = btf
        .find_by_name_kind(".maps", Kind::Datasec)
        .ok_or(Error::new(ErrorKind::MissingSection(".maps DATASEC"), 0))?;
    let ds = btf.type_by_id(ds)?;
    for entry in ds.datasec_entries() {
        let var = btf.type_by_id(entry.type_id)?;
        if var.kind() != Kind::Var {
            return Err(bad(entry.type_id));
        }
        let name = btf.name(&var)?;
        let def = btf.type_by_id(btf.skip_mods_and_typedefs(var.type_id())?)?;
        let (mut m, values_off) = parse_def(btf, Cow::Borrowed(name), &def, entry.type_id, 0)?;
        m.btf_id = Some(entry.type_id);
        m.section = Some(sec);
        m.sec_offset = elf
            .symbols()
            .find(|s| {
                s.section() == SymbolSection::Section(SectionIndex(sec)) && s.name() == Ok(name)
            })
            .map_or(entry.offset, |s| s.address() as u32);
        // Remember where initializers start, in the (otherwise unused)
        // init list's first slot, until the relocations are read.
        if let Some(v) = values_off {
            m.init
                .try_reserve(1)
                .map_err(|_| Error::new(ErrorKind::OutOfMemory, 0))?;
            m.init.push((v, MapValues::Map(usize::MAX)));
        }
        try_push(out, m)?;
    }
    Ok(())
}

/// Legacy `struct bpf_map_def` entries of the `maps` section.
pub(super) fn legacy_maps<'a>(
    elf: &ElfFile64<'a, Endianness, &'a [u8]>,
    sec: usize,
    e: Endian,
    out: &mut Vec<Map<'a>>,
) -> Result<()> {
    let Ok(s) = elf.section_by_index(SectionIndex(sec)) else {
        return Ok(());
    };
    let data = s.data().unwrap_or(&[]);
    let mut syms: Vec<_> = elf
        .symbols()
        .filter(|s| {
            s.section() == SymbolSection::Section(SectionIndex(sec))
                && !s.name().unwrap_or("").is_empty()
        })
        .collect();
    syms.sort_by_key(|s| s.address());
    for sym in syms {
        let off = sym.address() as usize;
        let w = |i: usize| u32_at(data, off.saturating_add(i.saturating_mul(4)), e);
        let (Some(t), Some(k), Some(v), Some(n)) = (w(0), w(1), w(2), w(3)) else {
            return Err(Error::new(ErrorKind::Truncated, off));
        };
        let mut m = Map::empty(Cow::Borrowed(sym.name().unwrap_or("")), MapKind::Legacy);
        m.section = Some(sec);
        m.sec_offset = off as u32;
        m.map_type = MapType(t);
        m.key_size = k;
        m.value_size = v;
        m.max_entries = n;
        m.map_flags = w(4).unwrap_or(0);
        try_push(out, m)?;
    }
    Ok(())
}

/// Resolves `.maps` relocations into slot initializers.
pub(super) fn link_inner_and_initializers<'a>(
    elf: &ElfFile64<'a, Endianness, &'a [u8]>,
    maps_sec: Option<usize>,
    maps: &mut [Map<'a>],
    functions: &[Function<'a>],
    code: &[CodeSection<'a>],
) -> Result<()> {
    let Some(sec) = maps_sec else { return Ok(()) };
    let Ok(s) = elf.section_by_index(SectionIndex(sec)) else {
        return Ok(());
    };
    let starts: Vec<Option<u32>> = maps
        .iter_mut()
        .map(|m| match m.init.first() {
            Some(&(v, MapValues::Map(usize::MAX))) => {
                m.init.clear();
                Some(v)
            }
            _ => None,
        })
        .collect();
    for (off, r) in s.relocations() {
        let RelocationTarget::Symbol(si) = r.target() else {
            continue;
        };
        let Ok(sym) = elf.symbol_by_index(si) else {
            continue;
        };
        let name = sym.name().unwrap_or("");
        let off = off as u32;
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
        let Some(Some(vstart)) = starts.get(mi) else {
            return Err(Error::new(ErrorKind::BadMapDef(TypeId(0)), off as usize));
        };
        let rel = off.saturating_sub(maps.get(mi).map_or(0, |m| m.sec_offset));
        let slot = rel.saturating_sub(*vstart) / 8;
        let target = if let Some(t) = maps
            .iter()
            .position(|m| m.kind == MapKind::Btf && m.name == name)
        {
            MapValues::Map(t)
        } else if let Some(f) = functions
            .iter()
            .position(|f| f.name == name && code.get(f.section).is_some())
        {
            MapValues::Program(f)
        } else {
            return Err(Error::new(ErrorKind::BadMapDef(TypeId(0)), off as usize));
        };
        if let Some(m) = maps.get_mut(mi) {
            try_push(&mut m.init, (slot, target))?;
            if slot >= m.max_entries {
                return Err(Error::new(
                    ErrorKind::BadMapDef(m.btf_id.unwrap_or_default()),
                    off as usize,
                ));
            }
        }
    }
    Ok(())
}
