//! The kernel objects a load creates besides programs: the object's BTF,
//! maps (filled, frozen, slots set) and pins.

use super::program::log_text;
use super::*;

impl Loading<'_, '_> {
    pub(super) fn load_object_btf(&mut self) -> Result<Option<OwnedFd>, LoadError> {
        let obj = self.obj;
        if obj.btf.is_none() {
            return Ok(None);
        }
        if !self.feat.btf {
            self.notes
                .push("kernel has no BTF support: loading without object BTF".into());
            return Ok(None);
        }
        let blob = prep::kernel_btf(obj, &self.feat.btf_kinds).map_err(LoadError::Object)?;
        // No log on the first try: at level 1 the kernel logs every type
        // and fails a valid blob whose log does not fit (as libbpf, ask for
        // the log only to explain a failure).
        let e = match btf_load(&blob, None) {
            Ok(fd) => return Ok(Some(fd)),
            Err(e) => e,
        };
        let mut size = 1 << 16;
        let text = loop {
            let mut log = vec![0u8; size];
            match btf_load(&blob, Some(&mut log)) {
                // Loaded with a log after failing without one: keep it.
                Ok(fd) => return Ok(Some(fd)),
                // Grow up to the kernel's limit, then keep what fits.
                Err(le) if le.errno == Errno::NOSPC && size < MAX_LOG => {
                    size = size.saturating_mul(4).min(MAX_LOG);
                }
                Err(_) => break log_text(&log),
            }
        };
        // Nothing this loader loads requires BTF (struct_ops would): go on
        // without it, as libbpf does, and say so.
        let why = crate::privilege::explain_errno(e.errno, crate::privilege::Operation::BtfLoad)
            .map_or_else(String::new, |r| format!(" ({r})"));
        log::warn!("kernel rejected object BTF ({e}){why}; loading without it");
        self.notes.push(format!(
            "kernel rejected object BTF ({e}){why}; loading without it:\n{text}"
        ));
        Ok(None)
    }

    pub(super) fn map_create_attr<'a>(
        &self,
        m: &'a MapDef<'_>,
        btf: Option<BorrowedFd<'a>>,
        inner: Option<BorrowedFd<'a>>,
    ) -> Result<MapCreate<'a>, LoadError> {
        let mut flags = m.map_flags;
        if m.kind.is_internal() && !self.feat.mmapable_arrays {
            flags &= !ember_core::object::maps::BPF_F_MMAPABLE;
        }
        let mut max_entries = m.max_entries;
        if m.map_type == MapType::PERF_EVENT_ARRAY && max_entries == 0 {
            // One slot per possible CPU; no guess when that is unknown.
            max_entries =
                ember_sys::cpu::possible_cpus().map_err(|source| LoadError::MapCreate {
                    map: m.name.to_string(),
                    source,
                    eperm: None,
                })?;
        }
        if matches!(m.map_type, MapType::RINGBUF | MapType::USER_RINGBUF) {
            max_entries =
                ring_size(max_entries, ember_sys::mmap::page_size()).ok_or_else(|| {
                    LoadError::MapDefinition {
                        map: m.name.to_string(),
                        reason: format!(
                            "ring buffer size {max_entries} has no power-of-two multiple of the \
                         {}-byte page that fits in 32 bits",
                            ember_sys::mmap::page_size()
                        ),
                    }
                })?;
        }
        let btf_ids = btf
            .filter(|_| prep::map_takes_btf(m.map_type))
            .and_then(|fd| match m.kind {
                MapKind::Btf => match (m.key_type, m.value_type) {
                    (Some(k), Some(v)) => Some((fd, k.0, v.0)),
                    (None, Some(v)) => Some((fd, 0, v.0)),
                    _ => None,
                },
                MapKind::Data(_) | MapKind::Kconfig => m.btf_id.map(|d| (fd, 0, d.0)),
                MapKind::Legacy => None,
            });
        Ok(MapCreate {
            map_type: m.map_type.0,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries,
            map_flags: flags,
            name: &m.name,
            inner_map_fd: inner,
            btf: btf_ids,
            map_extra: m.map_extra,
            numa_node: m.numa_node,
            btf_vmlinux_value_type_id: 0,
        })
    }

    /// Creates one map, retrying without BTF when the kernel refuses the
    /// BTF description (as libbpf does).
    pub(super) fn create_one(
        &mut self,
        m: &MapDef<'_>,
        btf: Option<BorrowedFd<'_>>,
    ) -> Result<OwnedFd, LoadError> {
        let inner = match &m.inner {
            Some(i) => Some(self.create_one(i, btf)?),
            None => None,
        };
        let attr = self.map_create_attr(m, btf, inner.as_ref().map(AsFd::as_fd))?;
        let refused = |source: ember_sys::SysError| LoadError::MapCreate {
            map: m.name.to_string(),
            source,
            eperm: crate::privilege::explain_errno(
                source.errno,
                crate::privilege::Operation::MapCreate {
                    map_type: m.map_type,
                },
            ),
        };
        match map_create(&attr) {
            Ok(fd) => Ok(fd),
            Err(e) if attr.btf.is_some() => {
                let plain = MapCreate { btf: None, ..attr };
                let fd = map_create(&plain).map_err(|_| refused(e))?;
                self.notes
                    .push(format!("map '{}': created without BTF ({e})", m.name));
                Ok(fd)
            }
            Err(source) => Err(refused(source)),
        }
    }

    /// Creates (or reuses from their pins) every map, pinning new
    /// by-name maps as soon as they are made and filled, as libbpf does,
    /// so that a loader racing us for the same pin reuses our map and we
    /// reuse theirs.
    /// `None` stands for a map the spec left uncreated.
    pub(super) fn create_maps(
        &mut self,
        btf: Option<&OwnedFd>,
    ) -> Result<Vec<Option<Map>>, LoadError> {
        let obj = self.obj;
        let spec = self.spec;
        let btf = btf.map(AsFd::as_fd);
        let mut out = Vec::with_capacity(obj.maps.len());
        for (i, m) in obj.maps.iter().enumerate() {
            let opts = spec.maps.get(i);
            if opts.is_some_and(|o| !o.autocreate) {
                self.notes
                    .push(format!("map '{}': not created (autocreate off)", m.name));
                out.push(None);
                continue;
            }
            if let Some(fd) = opts.and_then(|o| o.reuse.as_ref()) {
                out.push(Some(self.reuse_fd(m, fd)?));
                continue;
            }
            let pin = match (
                opts.and_then(|o| o.pin_path.clone()),
                m.pinning,
                &self.cfg.pin_dir,
            ) {
                (Some(p), _, _) => Some(p),
                (None, Pinning::ByName, Some(dir)) => {
                    Some(dir.join(crate::maps::pin_name(&m.name)))
                }
                _ => None,
            };
            if pin.is_none() && m.pinning == Pinning::ByName {
                self.notes.push(format!(
                    "map '{}': pinning by name asked, but no pin directory given: not pinned \
                     (libbpf would pin it under /sys/fs/bpf)",
                    m.name
                ));
            }
            let Some(path) = pin else {
                let map = self.create_new(m, btf)?;
                out.push(Some(map));
                continue;
            };
            // Check, then act: another loader may pin the same name between
            // our check and our pin (EEXIST). Then reuse theirs, once.
            let mut retried = false;
            let map = loop {
                if path.exists() {
                    break self.reuse(m, &path)?;
                }
                let map = self.create_new(m, btf)?;
                match obj_pin(map.fd(), &cpath(&path)) {
                    Ok(()) => {
                        self.pins.0.push(path.clone());
                        break map;
                    }
                    Err(e) if e.errno == Errno::EXIST && !retried => {
                        retried = true;
                        self.notes.push(format!(
                            "map '{}': {} appeared while loading; reusing it",
                            m.name,
                            path.display()
                        ));
                    }
                    Err(source) => {
                        return Err(LoadError::Map {
                            map: m.name.to_string(),
                            action: "pin",
                            source,
                        });
                    }
                }
            };
            out.push(Some(map));
        }
        Ok(out)
    }

    /// Uses the caller's map `fd` for `m`, if it is the same map.
    fn reuse_fd(&mut self, m: &MapDef<'_>, fd: &OwnedFd) -> Result<Map, LoadError> {
        let attr = self.map_create_attr(m, None, None)?;
        let (max, flags) = (attr.max_entries, attr.map_flags);
        let dup = fd.try_clone().map_err(|e| LoadError::Map {
            map: m.name.to_string(),
            action: "duplicate the fd to reuse",
            source: ember_sys::SysError {
                cmd: "F_DUPFD_CLOEXEC",
                errno: Errno::from_io_error(&e).unwrap_or(Errno::BADF),
            },
        })?;
        let map = describe(m, dup, true)?;
        if let Some(detail) = map.differs_from(m, max, flags) {
            return Err(LoadError::MapDefinition {
                map: m.name.to_string(),
                reason: format!("the map given to reuse differs ({detail})"),
            });
        }
        self.notes
            .push(format!("map '{}': reused the given fd", m.name));
        Ok(map)
    }

    /// Creates and fills one map.
    fn create_new(
        &mut self,
        m: &MapDef<'_>,
        btf: Option<BorrowedFd<'_>>,
    ) -> Result<Map, LoadError> {
        let fd = self.create_one(m, btf)?;
        let map = describe(m, fd, false)?;
        self.init_internal(m, &map)?;
        Ok(map)
    }

    /// Opens the map pinned at `path` if it is the object's map `m`.
    fn reuse(&mut self, m: &MapDef<'_>, path: &Path) -> Result<Map, LoadError> {
        let attr = self.map_create_attr(m, None, None)?;
        let (max, flags) = (attr.max_entries, attr.map_flags);
        let fd = obj_get(&cpath(path)).map_err(|source| LoadError::Map {
            map: m.name.to_string(),
            action: "open pinned map",
            source,
        })?;
        let map = describe(m, fd, true)?;
        if let Some(detail) = map.differs_from(m, max, flags) {
            return Err(LoadError::PinMismatch {
                map: m.name.to_string(),
                path: path.to_path_buf(),
                detail,
            });
        }
        self.notes
            .push(format!("map '{}': reused {}", map.name(), path.display()));
        Ok(map)
    }

    /// Fills a global-data or `.kconfig` map and freezes read-only ones.
    pub(super) fn init_internal(&self, m: &MapDef<'_>, map: &Map) -> Result<(), LoadError> {
        let obj = self.obj;
        let mut value = match m.kind {
            MapKind::Data(i) => match self.spec.image(i) {
                Some(image) => image.to_vec(),
                None => return Ok(()),
            },
            MapKind::Kconfig => kconfig::fill(
                obj,
                m.value_size,
                &self.feat,
                self.syscall_wrapper,
                self.cfg.kconfig.as_deref(),
            )?,
            _ => return Ok(()),
        };
        value.resize(m.value_size as usize, 0);
        let fail = |action, source| LoadError::Map {
            map: map.name().to_owned(),
            action,
            source,
        };
        map.fd_raw()
            .update(&0u32.to_ne_bytes(), &value, 0)
            .map_err(|e| fail("write initial value", e))?;
        if m.map_flags & ember_core::object::maps::BPF_F_RDONLY_PROG != 0 {
            map.fd_raw().freeze().map_err(|e| fail("freeze", e))?;
        }
        Ok(())
    }

    pub(super) fn fill_slots(
        &self,
        maps: &[Option<Map>],
        programs: &[Program],
        prog_of_func: &HashMap<usize, usize>,
    ) -> Result<(), LoadError> {
        let obj = self.obj;
        for (mi, m) in obj.maps.iter().enumerate() {
            for &(slot, v) in &m.init {
                let fd = match v {
                    MapValues::Map(t) => maps
                        .get(t.index())
                        .and_then(Option::as_ref)
                        .map(Map::raw_fd),
                    MapValues::Program(f) => prog_of_func
                        .get(&f.index())
                        .and_then(|&p| programs.get(p))
                        .map(|p| std::os::fd::AsRawFd::as_raw_fd(&p.fd)),
                };
                let Some(target) = maps.get(mi).and_then(Option::as_ref) else {
                    continue;
                };
                // A reused pinned map is someone else's: its slots are
                // theirs to set (libbpf fills only maps it created).
                if target.reused() {
                    continue;
                }
                let Some(fd) = fd else {
                    // libbpf (1.1 to 1.7) fails the load here too
                    // (EBADF): an empty slot is not what the object says.
                    let reason = match v {
                        MapValues::Program(f) => {
                            let name = obj.functions.get(f.index()).map_or("?", |f| f.name);
                            format!(
                                "slot {slot} holds program '{name}', which is not loaded \
                                 (autoload is off)"
                            )
                        }
                        MapValues::Map(t) => {
                            let name = obj.map(t).map_or_else(String::new, |m| m.name.to_string());
                            format!(
                                "slot {slot} holds map '{name}', which was set not to be created"
                            )
                        }
                    };
                    return Err(LoadError::MapDefinition {
                        map: target.name().to_owned(),
                        reason,
                    });
                };
                target
                    .fd_raw()
                    .update(&slot.to_ne_bytes(), &(fd as u32).to_ne_bytes(), 0)
                    .map_err(|source| LoadError::Map {
                        map: target.name().to_owned(),
                        action: "fill slot",
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

/// Wraps a new or reused map fd as a [`Map`] described by the kernel.
fn describe(m: &MapDef<'_>, fd: OwnedFd, reused: bool) -> Result<Map, LoadError> {
    Map::describe(m.name.to_string(), fd, reused).map_err(|source| LoadError::Map {
        map: m.name.to_string(),
        action: "describe",
        source,
    })
}

/// Pins a load made; removed again on drop unless the load succeeded and
/// took them with [`Pins::keep`], so a failed load leaves no pin behind.
#[derive(Debug, Default)]
pub(super) struct Pins(Vec<PathBuf>);

impl Pins {
    /// The pins, now the caller's: they stay.
    pub(super) fn keep(&mut self) -> Vec<PathBuf> {
        core::mem::take(&mut self.0)
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub(crate) use ember_core::load::ring_size;

#[cfg(test)]
mod tests {
    use super::ring_size;

    #[test]
    fn ring_sizes_round_as_libbpf() {
        let p = 4096;
        assert_eq!(ring_size(0, p), Some(0));
        assert_eq!(ring_size(1, p), Some(4096));
        assert_eq!(ring_size(4096, p), Some(4096));
        assert_eq!(ring_size(100 * 1024, p), Some(128 * 1024));
        assert_eq!(ring_size(256 * 1024, p), Some(256 * 1024));
        assert_eq!(ring_size(4096, 65536), Some(65536));
        assert_eq!(ring_size(1 << 31, p), Some(1 << 31));
        assert_eq!(ring_size((1 << 31) + 1, p), None);
        assert_eq!(ring_size(0xFFFF_F001, p), None);
        assert_eq!(ring_size(u32::MAX, p), None);
    }
}
