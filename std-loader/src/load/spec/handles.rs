//! Handles to one map or program of an [`ObjectSpec`](super::ObjectSpec), to configure it.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use ember_core::object::{AttachType, Map as MapDef, MapKind, MapType, Pinning, ProgType};

use super::{AttachTarget, MapOptions, ProgramOptions, SpecError};

/// One map of an [`ObjectSpec`](super::ObjectSpec), to configure. Setters check what can be
/// checked without the kernel; the kernel has the last word at load.
#[derive(Debug)]
pub struct MapSpec<'s, 'a> {
    pub(super) def: &'s mut MapDef<'a>,
    pub(super) opts: &'s mut MapOptions,
}

impl<'a> MapSpec<'_, 'a> {
    /// The definition as it stands.
    pub fn def(&self) -> &MapDef<'a> {
        self.def
    }

    fn refuse(&self, reason: impl Into<String>) -> SpecError {
        SpecError::Map {
            map: self.def.name.to_string(),
            reason: reason.into(),
        }
    }

    /// Sets `max_entries` (ring buffers: the data size in bytes, rounded
    /// up here to a power-of-two number of pages, as libbpf's
    /// `bpf_map__set_max_entries` does; a size with no such rounding in
    /// 32 bits is kept for the load to refuse).
    ///
    /// # Errors
    /// [`SpecError::Map`] for global-data maps, which hold one entry.
    pub fn set_max_entries(&mut self, n: u32) -> Result<&mut Self, SpecError> {
        if !matches!(self.def.kind, MapKind::Btf | MapKind::Legacy) {
            return Err(self.refuse("a global-data map has exactly one entry"));
        }
        self.def.max_entries =
            if matches!(self.def.map_type, MapType::RINGBUF | MapType::USER_RINGBUF) {
                crate::load::create::ring_size(n, ember_sys::mmap::page_size()).unwrap_or(n)
            } else {
                n
            };
        Ok(self)
    }

    /// Sets the key size.
    ///
    /// # Errors
    /// [`SpecError::Map`] for global-data maps and for maps whose key the
    /// object describes in BTF (a different size would contradict it).
    pub fn set_key_size(&mut self, n: u32) -> Result<&mut Self, SpecError> {
        if !matches!(self.def.kind, MapKind::Btf | MapKind::Legacy) {
            return Err(self.refuse("a global-data map's key is its 4-byte index"));
        }
        if self.def.key_type.is_some() && n != self.def.key_size {
            return Err(self.refuse(format!(
                "its key type in BTF is {} bytes",
                self.def.key_size
            )));
        }
        self.def.key_size = n;
        Ok(self)
    }

    /// Sets the value size (e.g. a stack-trace map's depth × 8).
    ///
    /// # Errors
    /// [`SpecError::Map`] for global-data maps and for maps whose value
    /// the object describes in BTF.
    pub fn set_value_size(&mut self, n: u32) -> Result<&mut Self, SpecError> {
        if !matches!(self.def.kind, MapKind::Btf | MapKind::Legacy) {
            return Err(self.refuse(
                "a global-data map's value is its section: resize it with ObjectSpec::resize_section",
            ));
        }
        if self.def.value_type.is_some() && n != self.def.value_size {
            return Err(self.refuse(format!(
                "its value type in BTF is {} bytes",
                self.def.value_size
            )));
        }
        self.def.value_size = n;
        Ok(self)
    }

    /// Sets `map_flags` (`BPF_F_*`), replacing the object's.
    pub fn set_flags(&mut self, flags: u32) -> &mut Self {
        self.def.map_flags = flags;
        self
    }

    /// Sets the NUMA node (with `BPF_F_NUMA_NODE` in the flags).
    pub fn set_numa_node(&mut self, node: u32) -> &mut Self {
        self.def.numa_node = node;
        self
    }

    /// Sets `map_extra` (bloom filter hash count, arena address).
    pub fn set_map_extra(&mut self, extra: u64) -> &mut Self {
        self.def.map_extra = extra;
        self
    }

    /// Pins the map by name in the loader's pin directory
    /// ([`Pinning::ByName`]) or not at all ([`Pinning::None`]).
    pub fn set_pinning(&mut self, pinning: Pinning) -> &mut Self {
        self.def.pinning = pinning;
        self
    }

    /// Pins the map at `path` (reusing a compatible map already there),
    /// whatever the object or the pin directory say.
    pub fn set_pin_path(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.opts.pin_path = Some(path.into());
        self
    }

    /// Uses this existing map instead of creating one. At load its type,
    /// sizes, entries and flags must match the definition, or the load
    /// fails naming what differs.
    pub fn reuse_fd(&mut self, fd: OwnedFd) -> &mut Self {
        self.opts.reuse = Some(fd);
        self
    }

    /// Whether the map will be created at load.
    pub fn autocreate(&self) -> bool {
        self.opts.autocreate
    }

    /// Whether the map is created at load (default: yes). A program that
    /// uses a map left uncreated fails to load, naming both.
    pub fn set_autocreate(&mut self, on: bool) -> &mut Self {
        self.opts.autocreate = on;
        self
    }

    /// The inner map template of a map of maps, to configure (its
    /// `max_entries`, for example).
    pub fn inner(&mut self) -> Option<InnerMapSpec<'_, 'a>> {
        let name = self.def.name.to_string();
        self.def
            .inner
            .as_deref_mut()
            .map(|def| InnerMapSpec { outer: name, def })
    }
}

/// The inner map template of a map of maps.
#[derive(Debug)]
pub struct InnerMapSpec<'s, 'a> {
    outer: String,
    def: &'s mut MapDef<'a>,
}

impl InnerMapSpec<'_, '_> {
    /// Sets the template's `max_entries`.
    pub fn set_max_entries(&mut self, n: u32) -> &mut Self {
        self.def.max_entries = n;
        self
    }

    /// Sets the template's flags.
    pub fn set_flags(&mut self, flags: u32) -> &mut Self {
        self.def.map_flags = flags;
        self
    }

    /// The map of maps it belongs to.
    pub fn outer(&self) -> &str {
        &self.outer
    }
}

/// One program of an [`ObjectSpec`](super::ObjectSpec), to configure. Unset settings come
/// from its section name, as libbpf's `SEC()` conventions say.
#[derive(Debug)]
pub struct ProgramSpec<'s> {
    pub(super) opts: &'s mut ProgramOptions,
    pub(super) default_type: Option<ProgType>,
    pub(super) default_attach: Option<AttachType>,
    pub(super) flags_default: u32,
}

impl ProgramSpec<'_> {
    /// The program type it will be loaded as (`None`: its section names
    /// none and none was set).
    pub fn prog_type(&self) -> Option<ProgType> {
        self.opts.prog_type.or(self.default_type)
    }

    /// The expected attach type it will be loaded with.
    pub fn expected_attach_type(&self) -> Option<AttachType> {
        self.opts.attach_type.unwrap_or(self.default_attach)
    }

    /// The program flags (`BPF_F_SLEEPABLE`, ...) it will be loaded with.
    pub fn flags(&self) -> u32 {
        self.opts.flags.unwrap_or(self.flags_default)
    }

    /// Whether it will be loaded.
    pub fn autoload(&self) -> bool {
        self.opts.autoload
    }

    /// Loads it, or not (default: yes).
    pub fn set_autoload(&mut self, on: bool) -> &mut Self {
        self.opts.autoload = on;
        self
    }

    /// Sets the program type, replacing the section's.
    pub fn set_prog_type(&mut self, t: ProgType) -> &mut Self {
        self.opts.prog_type = Some(t);
        self
    }

    /// Sets the expected attach type (`None`: none).
    pub fn set_expected_attach_type(&mut self, t: Option<AttachType>) -> &mut Self {
        self.opts.attach_type = Some(t);
        self
    }

    /// Sets where a tracing, LSM or extension program attaches (an
    /// extension needs [`AttachTarget::Program`]).
    pub fn set_attach_target(&mut self, target: AttachTarget) -> &mut Self {
        self.opts.attach_target = Some(target);
        self
    }

    /// Sets the program flags, replacing the section's
    /// ([`F_SLEEPABLE`](super::F_SLEEPABLE), [`F_XDP_HAS_FRAGS`](super::F_XDP_HAS_FRAGS)).
    pub fn set_flags(&mut self, flags: u32) -> &mut Self {
        self.opts.flags = Some(flags);
        self
    }

    /// Binds it to a network device (`prog_ifindex`: offloaded or
    /// dev-bound XDP).
    pub fn set_ifindex(&mut self, ifindex: u32) -> &mut Self {
        self.opts.ifindex = ifindex;
        self
    }

    /// Verifier log level for this program, also on success (1 basic, 2
    /// verbose); the loader's level otherwise.
    pub fn set_log_level(&mut self, level: u32) -> &mut Self {
        self.opts.log_level = Some(level);
        self
    }

    /// Initial verifier log size for this program (it grows as the kernel
    /// asks).
    pub fn set_log_size(&mut self, size: usize) -> &mut Self {
        self.opts.log_size = Some(size);
        self
    }
}
