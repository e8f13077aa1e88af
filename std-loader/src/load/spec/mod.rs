//! An opened object, configured before load: open (parse, no kernel) →
//! [`ObjectSpec`] (maps, programs and globals, each checked as it is set)
//! → [`EbpfLoader::load_spec`](crate::EbpfLoader::load_spec).
//!
//! The spec borrows the object's bytes (the parsed object is zero-copy)
//! and owns only what was changed: map definitions are edited in place,
//! program and map options sit beside them, and each global-data section
//! has its own image, so typed writes land where the kernel map's initial
//! value is taken from.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use bytemuck::Pod;
use ember_core::btf::TypeId;
use ember_core::object::{
    AttachType, Map as MapDef, MapKind, Object, ProgType, is_data_section, object_name,
};

use super::LoadError;

mod error;
mod handles;
mod target;

pub use self::error::SpecError;
pub use self::handles::{InnerMapSpec, MapSpec, ProgramSpec};
pub use self::target::{AttachTarget, TargetProgram};

/// Settings of one map beside its definition.
#[derive(Debug)]
pub(crate) struct MapOptions {
    pub(crate) autocreate: bool,
    pub(crate) reuse: Option<OwnedFd>,
    pub(crate) pin_path: Option<PathBuf>,
}

impl Default for MapOptions {
    fn default() -> Self {
        MapOptions {
            autocreate: true,
            reuse: None,
            pin_path: None,
        }
    }
}

/// Settings of one program beside its section's defaults.
#[derive(Debug, Clone)]
pub(crate) struct ProgramOptions {
    pub(crate) autoload: bool,
    pub(crate) prog_type: Option<ProgType>,
    pub(crate) attach_type: Option<Option<AttachType>>,
    pub(crate) attach_target: Option<AttachTarget>,
    pub(crate) log_level: Option<u32>,
    pub(crate) log_size: Option<usize>,
    pub(crate) flags: Option<u32>,
    pub(crate) ifindex: u32,
}

impl Default for ProgramOptions {
    fn default() -> Self {
        ProgramOptions {
            autoload: true,
            prog_type: None,
            attach_type: None,
            attach_target: None,
            log_level: None,
            log_size: None,
            flags: None,
            ifindex: 0,
        }
    }
}

/// `BPF_F_SLEEPABLE`.
pub const F_SLEEPABLE: u32 = 1 << 4;
/// `BPF_F_XDP_HAS_FRAGS`.
pub const F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// An object opened and being configured: what libbpf calls an open
/// object, cilium a `CollectionSpec`.
#[derive(Debug)]
pub struct ObjectSpec<'a> {
    pub(crate) obj: Object<'a>,
    pub(crate) file: String,
    pub(crate) maps: Vec<MapOptions>,
    pub(crate) programs: Vec<ProgramOptions>,
    /// One image per [`Object::data`] section: its initial bytes, with
    /// the globals set so far.
    pub(crate) images: Vec<Vec<u8>>,
    /// Per data section: resized, so its last (array) variable spans
    /// whatever follows its offset.
    resized: Vec<bool>,
}

impl<'a> ObjectSpec<'a> {
    /// Parses the object in `data` (no kernel is touched). `file_name`
    /// names internal maps as libbpf does (`load.rodata`).
    ///
    /// # Errors
    /// [`LoadError::Parse`] naming what is malformed, or
    /// [`LoadError::NoObjectBtf`].
    pub fn parse(data: &'a [u8], file_name: &str) -> Result<ObjectSpec<'a>, LoadError> {
        let obj = Object::parse(data, object_name(file_name)).map_err(|e| {
            if e.is_missing_btf() {
                LoadError::NoObjectBtf {
                    object: file_name.to_owned(),
                }
            } else {
                LoadError::Parse(e.into())
            }
        })?;
        let mut images = Vec::with_capacity(obj.data.len());
        for d in &obj.data {
            // A `.bss` is only a size in the file: refuse one that cannot
            // be allocated rather than abort.
            let mut v = Vec::new();
            v.try_reserve_exact(d.size as usize)
                .map_err(|_| LoadError::MapDefinition {
                    map: d.name.to_owned(),
                    reason: format!("a {}-byte section cannot be allocated", d.size),
                })?;
            v.resize(d.size as usize, 0);
            if let Some(init) = d.init {
                let n = init.len().min(v.len());
                v[..n].copy_from_slice(&init[..n]);
            }
            images.push(v);
        }
        Ok(ObjectSpec {
            resized: obj.data.iter().map(|_| false).collect(),
            maps: obj.maps.iter().map(|_| MapOptions::default()).collect(),
            programs: obj
                .functions
                .iter()
                .map(|_| ProgramOptions::default())
                .collect(),
            images,
            file: file_name.to_owned(),
            obj,
        })
    }

    /// The parsed object (read-only: change it through the setters).
    pub fn object(&self) -> &Object<'a> {
        &self.obj
    }

    /// The file name it was opened as.
    pub fn file_name(&self) -> &str {
        &self.file
    }

    /// Every map's name, in object order.
    pub fn map_names(&self) -> Vec<String> {
        self.obj.maps.iter().map(|m| m.name.to_string()).collect()
    }

    /// Every program's name, in object order.
    pub fn program_names(&self) -> Vec<String> {
        self.obj.programs().map(|f| f.name.to_owned()).collect()
    }

    fn map_index(&self, name: &str) -> Result<usize, SpecError> {
        self.obj
            .maps
            .iter()
            .position(|m| m.name == name)
            .ok_or_else(|| SpecError::UnknownMap {
                name: name.to_owned(),
                known: self.map_names(),
            })
    }

    fn program_index(&self, name: &str) -> Result<usize, SpecError> {
        self.obj
            .functions
            .iter()
            .position(|f| f.is_program && f.name == name)
            .ok_or_else(|| SpecError::UnknownProgram {
                name: name.to_owned(),
                known: self.program_names(),
            })
    }

    /// The definition of map `name` as it stands.
    ///
    /// # Errors
    /// [`SpecError::UnknownMap`].
    pub fn map(&self, name: &str) -> Result<&MapDef<'a>, SpecError> {
        let i = self.map_index(name)?;
        self.obj.maps.get(i).ok_or_else(|| SpecError::UnknownMap {
            name: name.to_owned(),
            known: self.map_names(),
        })
    }

    /// Map `name`, to configure.
    ///
    /// # Errors
    /// [`SpecError::UnknownMap`].
    pub fn map_mut(&mut self, name: &str) -> Result<MapSpec<'_, 'a>, SpecError> {
        let i = self.map_index(name)?;
        match (self.obj.maps.get_mut(i), self.maps.get_mut(i)) {
            (Some(def), Some(opts)) => Ok(MapSpec { def, opts }),
            _ => Err(SpecError::UnknownMap {
                name: name.to_owned(),
                known: Vec::new(),
            }),
        }
    }

    /// Program `name`, to configure.
    ///
    /// # Errors
    /// [`SpecError::UnknownProgram`].
    pub fn program_mut(&mut self, name: &str) -> Result<ProgramSpec<'_>, SpecError> {
        let i = self.program_index(name)?;
        let f = self.obj.functions.get(i);
        let (default_type, default_attach) = f
            .and_then(|f| f.sec_def)
            .map_or((None, None), |d| (Some(d.prog_type), d.attach_type));
        let flags_default = f.and_then(|f| f.sec_def).map_or(0, |d| {
            let mut fl = 0;
            if d.sleepable {
                fl |= F_SLEEPABLE;
            }
            if d.xdp_frags {
                fl |= F_XDP_HAS_FRAGS;
            }
            fl
        });
        match self.programs.get_mut(i) {
            Some(opts) => Ok(ProgramSpec {
                opts,
                default_type,
                default_attach,
                flags_default,
            }),
            None => Err(SpecError::UnknownProgram {
                name: name.to_owned(),
                known: Vec::new(),
            }),
        }
    }

    /// Whether program `name` will be loaded.
    ///
    /// # Errors
    /// [`SpecError::UnknownProgram`].
    pub fn autoload(&self, name: &str) -> Result<bool, SpecError> {
        let i = self.program_index(name)?;
        Ok(self.programs.get(i).is_none_or(|o| o.autoload))
    }

    /// Every global variable's name.
    pub fn global_names(&self) -> Vec<String> {
        self.obj
            .data_symbols
            .iter()
            .filter(|d| is_data_section(d.section))
            .map(|d| d.name.to_owned())
            .collect()
    }

    /// Where global `name` lives: its section's image index, its offset
    /// and its size (from BTF; without BTF, the room left in its section).
    fn global_slot(&self, name: &str) -> Result<(usize, usize, usize), SpecError> {
        let unknown = || SpecError::UnknownGlobal {
            name: name.to_owned(),
            known: self.global_names(),
        };
        let sym = self
            .obj
            .data_symbols
            .iter()
            .find(|d| d.name == name && is_data_section(d.section))
            .ok_or_else(unknown)?;
        let di = self
            .obj
            .data
            .iter()
            .position(|d| d.name == sym.section)
            .ok_or_else(unknown)?;
        let d = self.obj.data.get(di).ok_or_else(unknown)?;
        let off = sym.offset as usize;
        let room = (d.size as usize).checked_sub(off).ok_or_else(unknown)?;
        let last = self.resized.get(di).copied().unwrap_or(false)
            && d.datasec
                .and_then(|ds| last_var(&self.obj, d.name, ds))
                .map(|v| v.0)
                == Some(sym.offset);
        let size = if last {
            room
        } else {
            // BTF's size; without BTF the symbol's (if it has one).
            let elf = (sym.size != 0).then_some(sym.size as usize);
            d.datasec
                .and_then(|ds| var_size(&self.obj, ds, name))
                .or(elf)
                .unwrap_or(room)
                .min(room)
        };
        Ok((di, off, size))
    }

    /// The size of global `name` (from its BTF type; without BTF, the
    /// room left in its section).
    ///
    /// # Errors
    /// [`SpecError::UnknownGlobal`].
    pub fn global_size(&self, name: &str) -> Result<usize, SpecError> {
        self.global_slot(name).map(|(_, _, size)| size)
    }

    /// Sets global `name` (in `.rodata`, `.data`, `.bss` or a `.data.*`
    /// section) to `value`, whose size must be the variable's BTF size.
    /// A `.rodata` value is what the programs see (and the verifier
    /// trusts) after load.
    ///
    /// # Errors
    /// [`SpecError::UnknownGlobal`] or [`SpecError::GlobalSize`].
    pub fn set_global<T: Pod>(&mut self, name: &str, value: &T) -> Result<(), SpecError> {
        self.set_global_bytes(name, bytemuck::bytes_of(value))
    }

    /// As [`ObjectSpec::set_global`], but a variable the object does not
    /// have is not an error: `Ok(false)` (for values optional builds of
    /// the object may lack).
    ///
    /// # Errors
    /// [`SpecError::GlobalSize`].
    pub fn set_global_if_present<T: Pod>(
        &mut self,
        name: &str,
        value: &T,
    ) -> Result<bool, SpecError> {
        match self.set_global(name, value) {
            Ok(()) => Ok(true),
            Err(SpecError::UnknownGlobal { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets global `name` from bytes (exactly its size).
    ///
    /// # Errors
    /// [`SpecError::UnknownGlobal`] or [`SpecError::GlobalSize`].
    pub fn set_global_bytes(&mut self, name: &str, value: &[u8]) -> Result<(), SpecError> {
        let (di, off, size) = self.global_slot(name)?;
        let wrong = SpecError::GlobalSize {
            name: name.to_owned(),
            size,
            given: value.len(),
        };
        if size != value.len() {
            return Err(wrong);
        }
        let dst = self
            .images
            .get_mut(di)
            .and_then(|img| img.get_mut(off..off.saturating_add(size)))
            .ok_or(wrong)?;
        dst.copy_from_slice(value);
        Ok(())
    }

    /// The value global `name` will start with.
    ///
    /// # Errors
    /// [`SpecError::UnknownGlobal`] or [`SpecError::GlobalSize`] when `T`
    /// is not the variable's size.
    pub fn global<T: Pod>(&self, name: &str) -> Result<T, SpecError> {
        let (di, off, size) = self.global_slot(name)?;
        let wrong = || SpecError::GlobalSize {
            name: name.to_owned(),
            size,
            given: size_of::<T>(),
        };
        if size != size_of::<T>() {
            return Err(wrong());
        }
        let src = self
            .images
            .get(di)
            .and_then(|img| img.get(off..off.saturating_add(size)))
            .ok_or_else(wrong)?;
        Ok(bytemuck::pod_read_unaligned(src))
    }

    fn section_index(&self, section: &str) -> Result<usize, SpecError> {
        self.obj
            .data
            .iter()
            .position(|d| d.name == section)
            .ok_or_else(|| SpecError::UnknownSection {
                name: section.to_owned(),
                known: self.obj.data.iter().map(|d| d.name.to_owned()).collect(),
            })
    }

    /// The whole image of global-data section `section` (`.rodata`,
    /// `.data`, `.bss`, `.data.custom`, ...).
    ///
    /// # Errors
    /// [`SpecError::UnknownSection`].
    pub fn section_data(&self, section: &str) -> Result<&[u8], SpecError> {
        let i = self.section_index(section)?;
        Ok(self.images.get(i).map_or(&[][..], Vec::as_slice))
    }

    /// The whole image of global-data section `section`, to write.
    ///
    /// # Errors
    /// [`SpecError::UnknownSection`].
    pub fn section_data_mut(&mut self, section: &str) -> Result<&mut [u8], SpecError> {
        let i = self.section_index(section)?;
        Ok(self
            .images
            .get_mut(i)
            .map_or(&mut [][..], Vec::as_mut_slice))
    }

    /// Resizes global-data section `section` (and its map's value) to
    /// `size` bytes, as libbpf's `bpf_map__set_value_size` does for
    /// `.bss`/`.data.*` maps: the section's last variable must be an
    /// array, and `size` must end on a whole element of it. The array's
    /// new length shows in [`ObjectSpec::global_size`]; new bytes are
    /// zero. The map is then created without its BTF value type (the
    /// object's DATASEC still says the old size), where libbpf rewrites
    /// the BTF.
    ///
    /// # Errors
    /// [`SpecError::UnknownSection`], or [`SpecError::Map`] saying why the
    /// section cannot take that size.
    pub fn resize_section(&mut self, section: &str, size: u32) -> Result<(), SpecError> {
        let di = self.section_index(section)?;
        let mi = self
            .obj
            .maps
            .iter()
            .position(|m| m.kind == MapKind::Data(di));
        let map_name = mi
            .and_then(|i| self.obj.maps.get(i))
            .map_or_else(|| section.to_owned(), |m| m.name.to_string());
        let refuse = |reason: String| SpecError::Map {
            map: map_name.clone(),
            reason,
        };
        let d = self
            .obj
            .data
            .get(di)
            .ok_or_else(|| refuse("no such section".into()))?;
        let (off, elem) = d
            .datasec
            .and_then(|ds| last_var(&self.obj, section, ds))
            .and_then(|(off, ty)| Some((off, array_elem_size(&self.obj, ty)?)))
            .ok_or_else(|| {
                refuse(format!(
                    "section {section} can be resized only when its last variable is an array"
                ))
            })?;
        let fits = size
            .checked_sub(off)
            .is_some_and(|rest| elem != 0 && rest.is_multiple_of(elem));
        if !fits {
            return Err(refuse(format!(
                "{size} bytes do not end on a whole element of the last variable (at offset {off}, {elem}-byte elements)"
            )));
        }
        if let Some(img) = self.images.get_mut(di) {
            img.resize(size as usize, 0);
        }
        if let Some(d) = self.obj.data.get_mut(di) {
            d.size = size;
        }
        if let Some(r) = self.resized.get_mut(di) {
            *r = true;
        }
        if let Some(m) = mi.and_then(|i| self.obj.maps.get_mut(i)) {
            m.value_size = size;
            m.btf_id = None;
        }
        Ok(())
    }

    /// The image of data section `i`, for the loader.
    pub(crate) fn image(&self, i: usize) -> Option<&[u8]> {
        self.images.get(i).map(Vec::as_slice)
    }
}

/// The BTF size of variable `name` in DATASEC `ds`.
fn var_size(obj: &Object<'_>, ds: TypeId, name: &str) -> Option<usize> {
    let btf = obj.btf.as_ref()?;
    btf.get(ds)?
        .datasec_entries()
        .find_map(|e| {
            let v = btf.get(e.type_id)?;
            (btf.name(&v).ok()? == name).then(|| btf.resolve_size(v.type_id()).ok())?
        })
        .map(|s| s as usize)
}

/// The variable of data section `section` (DATASEC `ds`) at the highest
/// offset: (offset, VAR's type). Offsets come from the ELF symbols, as the
/// object's DATASEC leaves them for the loader to fill.
fn last_var(obj: &Object<'_>, section: &str, ds: TypeId) -> Option<(u32, TypeId)> {
    let btf = obj.btf.as_ref()?;
    let sym = obj
        .data_symbols
        .iter()
        .filter(|d| d.section == section)
        .max_by_key(|d| d.offset)?;
    btf.get(ds)?.datasec_entries().find_map(|e| {
        let v = btf.get(e.type_id)?;
        (btf.name(&v).ok()? == sym.name).then(|| (sym.offset, v.type_id()))
    })
}

/// The element size of array type `ty` (through modifiers and typedefs).
fn array_elem_size(obj: &Object<'_>, ty: TypeId) -> Option<u32> {
    let btf = obj.btf.as_ref()?;
    let arr = btf.get(btf.skip_mods_and_typedefs(ty).ok()?)?.as_array()?;
    btf.resolve_size(arr.elem_type).ok()
}
