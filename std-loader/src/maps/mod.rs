//! Maps of a loaded object (or opened from a pin): byte-level access on
//! [`Map`], and typed views for each map family — [`HashMap`], [`Array`],
//! [`PerCpuArray`]/[`PerCpuHashMap`], [`Queue`]/[`Stack`], [`LpmTrie`],
//! [`BloomFilter`], [`ProgArray`] and [`MapOfMaps`]. Types cross the
//! boundary as plain bytes through [`bytemuck::Pod`]; every view checks
//! the map's type and sizes when it is made, so a mismatch is an error
//! and never a short read.

use core::fmt;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use bytemuck::Pod;
use ember_core::object::{Map as MapDef, MapType};
use ember_sys::{AsFd, BorrowedFd, Errno, MapFd, OwnedFd, SysError};

mod events;
mod percpu;
mod slots;
mod storage;
mod views;

pub use events::{PerfEventArray, RingBuffer, StackTraceMap};

pub use percpu::{PerCpuArray, PerCpuHashMap, PerCpuValues};
pub use slots::{MapOfMaps, ProgArray, RedirectMap, RedirectSlot, SockMap, XskMap};
pub use storage::LocalStorage;
pub use views::{Array, BloomFilter, HashMap, LpmKey, LpmTrie, Queue, Stack};

/// `BPF_ANY`.
pub const ANY: u64 = 0;
/// `BPF_NOEXIST`: create only.
pub const NOEXIST: u64 = 1;
/// `BPF_EXIST`: update only.
pub const EXIST: u64 = 2;

/// A map: its fd, name and shape. The shape (type, key and value sizes,
/// `max_entries`, flags, `map_extra`) is what the kernel reports for the
/// fd (`BPF_OBJ_GET_INFO_BY_FD`), not what the object asked for: a reused
/// pin or a kernel that adjusted a size shows here as it really is.
#[derive(Debug)]
pub struct Map {
    name: String,
    fd: MapFd,
    map_type: MapType,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    flags: u32,
    map_extra: u64,
    reused: bool,
    /// A new arena's pages, mapped so the kernel fixes the arena's user
    /// address (libbpf does the same before programs load; the verifier
    /// refuses arena programs until it is set).
    arena: Option<ember_sys::mmap::Mmap>,
    /// The same for an arena made with `BPF_F_SEGV_ON_FAULT`: its range,
    /// mapped without access to its bytes.
    arena_reserved: Option<ember_sys::mmap::ArenaReservation>,
}

/// A map operation that failed, naming the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError {
    /// The map.
    pub map: String,
    /// What was being done (`lookup`, `update`, `view`, ...).
    pub op: &'static str,
    /// Why.
    pub kind: MapErrorKind,
}

/// Why a map operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MapErrorKind {
    /// The kernel refused it.
    Sys(SysError),
    /// The map is not what a typed view expects: what differs.
    Mismatch(String),
    /// A per-CPU write gave the wrong number of values.
    CpuCount {
        /// One per possible CPU.
        expected: u32,
        /// What was given.
        given: usize,
    },
}

impl MapError {
    /// The kernel's errno, when the kernel refused the operation.
    pub fn errno(&self) -> Option<Errno> {
        match self.kind {
            MapErrorKind::Sys(e) => Some(e.errno),
            _ => None,
        }
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "map '{}': {}", self.map, self.op)?;
        match &self.kind {
            // The kernel's error is the source.
            MapErrorKind::Sys(_) => write!(f, " failed"),
            MapErrorKind::Mismatch(d) => write!(f, ": {d}"),
            MapErrorKind::CpuCount { expected, given } => write!(
                f,
                ": {given} values given, one per possible CPU ({expected}) needed"
            ),
        }
    }
}

impl core::error::Error for MapError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.kind {
            MapErrorKind::Sys(e) => Some(e),
            _ => None,
        }
    }
}

impl Map {
    /// Wraps a map fd, describing the map as the kernel reports it (so a
    /// view's size checks hold for the real map, whatever was expected).
    ///
    /// # Errors
    /// The kernel's error for `BPF_OBJ_GET_INFO_BY_FD`.
    pub fn from_fd(name: String, fd: OwnedFd, reused: bool) -> Result<Map, MapError> {
        Map::describe(name.clone(), fd, reused).map_err(|e| MapError {
            map: name,
            op: "describe",
            kind: MapErrorKind::Sys(e),
        })
    }

    /// [`Map::from_fd`] with the kernel's error as it is.
    pub(crate) fn describe(name: String, fd: OwnedFd, reused: bool) -> Result<Map, SysError> {
        let info = ember_sys::map_info(fd.as_fd())?;
        // An arena whose address the object left to the kernel
        // (map_extra 0) gets it from its first mmap(): map it now, for its
        // whole size. One reused from a pin was mapped by its creator.
        let (mut arena, mut arena_reserved) = (None, None);
        if info.map_type == MapType::ARENA.0 && info.map_extra == 0 && !reused {
            let pages = usize::try_from(info.max_entries).unwrap_or(usize::MAX);
            let len = pages.saturating_mul(ember_sys::mmap::page_size());
            // With BPF_F_SEGV_ON_FAULT, pages the program has not allocated
            // fault: reserve the range without exposing its bytes.
            if info.map_flags & F_SEGV_ON_FAULT != 0 {
                arena_reserved = Some(ember_sys::mmap::ArenaReservation::map(fd.as_fd(), len)?);
            } else {
                arena = Some(ember_sys::mmap::Mmap::map(
                    fd.as_fd(),
                    0,
                    len,
                    ember_sys::mmap::Access::ReadWrite,
                )?);
            }
        }
        let fd = MapFd::from_fd(fd)?;
        Ok(Map {
            arena,
            arena_reserved,
            name,
            fd,
            map_type: MapType(info.map_type),
            key_size: info.key_size,
            value_size: info.value_size,
            max_entries: info.max_entries,
            flags: info.map_flags,
            map_extra: info.map_extra,
            reused,
        })
    }

    /// Opens the map pinned at `path` (its name is the file name).
    ///
    /// # Errors
    /// The kernel's error opening the pin or describing the map.
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Map, MapError> {
        let path = path.as_ref();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let fail = |e| MapError {
            map: name.clone(),
            op: "open pin",
            kind: MapErrorKind::Sys(e),
        };
        let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            fail(SysError {
                cmd: "BPF_OBJ_GET",
                errno: Errno::INVAL,
            })
        })?;
        let fd = ember_sys::obj_get(&p).map_err(fail)?;
        Map::from_fd(name.clone(), fd, true)
    }

    /// What differs between this (pinned) map and the object's definition
    /// `def` created with `max_entries`, as libbpf's reuse check sees it.
    /// `max_entries` and `flags` are what this loader would create the
    /// map with (ring buffers rounded, flags the kernel lacks dropped).
    pub(crate) fn differs_from(
        &self,
        def: &MapDef<'_>,
        max_entries: u32,
        flags: u32,
    ) -> Option<String> {
        let mut d = Vec::new();
        if self.map_type != def.map_type {
            d.push(format!("type {} vs {}", self.map_type, def.map_type));
        }
        if self.key_size != def.key_size {
            d.push(format!("key size {} vs {}", self.key_size, def.key_size));
        }
        if self.value_size != def.value_size {
            d.push(format!(
                "value size {} vs {}",
                self.value_size, def.value_size
            ));
        }
        if self.max_entries != max_entries {
            d.push(format!("max_entries {} vs {max_entries}", self.max_entries));
        }
        if self.flags != flags {
            d.push(format!("flags {:#x} vs {flags:#x}", self.flags));
        }
        if self.map_extra != def.map_extra {
            d.push(format!("map_extra {} vs {}", self.map_extra, def.map_extra));
        }
        (!d.is_empty()).then(|| format!("pinned vs object: {}", d.join(", ")))
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file name it gets when pinned: its name with `.` as `_`
    /// (bpffs refuses dots, e.g. in `obj.rodata`), as libbpf does.
    pub fn pin_name(&self) -> String {
        pin_name(&self.name)
    }

    /// Its type.
    pub fn map_type(&self) -> MapType {
        self.map_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes (per CPU, for per-CPU maps).
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Maximum entries as defined in the object.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// Map flags as defined in the object.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The user-space mapping of an arena this load created with
    /// `map_extra` 0 (its address is the arena's user address); `None`
    /// for other maps and for arenas at a fixed `map_extra`.
    pub fn arena(&self) -> Option<&ember_sys::mmap::Mmap> {
        self.arena.as_ref()
    }

    /// The address range of an arena this load created with `map_extra`
    /// 0 and `BPF_F_SEGV_ON_FAULT`: mapped (so the kernel fixed the
    /// arena's user address) but without access to its bytes.
    pub fn arena_reservation(&self) -> Option<&ember_sys::mmap::ArenaReservation> {
        self.arena_reserved.as_ref()
    }

    /// Whether it was reused from a pin rather than created.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The map fd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }

    /// The sized fd ember-sys readers take (ring and perf buffers).
    pub fn map_fd(&self) -> &MapFd {
        &self.fd
    }

    pub(crate) fn fd_raw(&self) -> &MapFd {
        &self.fd
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.fd().as_raw_fd()
    }

    /// Bytes a lookup returns (value size, or one 8-byte-aligned slot per
    /// possible CPU).
    pub fn value_len(&self) -> usize {
        self.fd.value_len()
    }

    /// Looks `key` up; `None` when absent.
    ///
    /// # Errors
    /// The kernel's error other than "not found".
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        let mut v = vec![0u8; self.fd.value_len()];
        match self.fd.lookup(key, &mut v, 0) {
            Ok(()) => Ok(Some(v)),
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => Ok(None),
            Err(e) => Err(self.sys("lookup", e)),
        }
    }

    /// `e`, naming this map and the operation.
    fn sys(&self, op: &'static str, e: SysError) -> MapError {
        self.error(op, MapErrorKind::Sys(e))
    }

    fn error(&self, op: &'static str, kind: MapErrorKind) -> MapError {
        MapError {
            map: self.name.clone(),
            op,
            kind,
        }
    }

    /// Inserts or updates `key` (`flags`: [`ANY`], [`NOEXIST`], [`EXIST`]).
    ///
    /// # Errors
    /// The kernel's error (`E2BIG` when full, `EEXIST`/`ENOENT` per flags).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapError> {
        self.fd
            .update(key, value, flags)
            .map_err(|e| self.sys("update", e))
    }

    /// Deletes `key`; `false` when it was absent.
    ///
    /// # Errors
    /// The kernel's error other than "not found".
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        match self.fd.delete(key) {
            Ok(()) => Ok(true),
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(self.sys("delete", e)),
        }
    }

    /// Iterates over the keys (`BPF_MAP_GET_NEXT_KEY`). Keys deleted
    /// during iteration may restart it, as in the kernel.
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            map: self,
            last: None,
            done: false,
        }
    }

    /// Pins the map at `path` in a bpffs.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), MapError> {
        let fail = |errno| {
            self.sys(
                "pin",
                SysError {
                    cmd: "BPF_OBJ_PIN",
                    errno,
                },
            )
        };
        let p = std::ffi::CString::new(path.as_ref().as_os_str().as_encoded_bytes())
            .map_err(|_| fail(Errno::INVAL))?;
        ember_sys::obj_pin(self.fd(), &p).map_err(|e| self.sys("pin", e))
    }

    fn expect(&self, types: &[MapType], key: usize, value: usize) -> Result<(), MapError> {
        let bad = |detail| self.error("view", MapErrorKind::Mismatch(detail));
        if !types.contains(&self.map_type) {
            return Err(bad(format!("is a {} map", self.map_type)));
        }
        if key != self.key_size as usize {
            return Err(bad(format!("key is {} bytes, not {key}", self.key_size)));
        }
        if value != self.value_size as usize {
            return Err(bad(format!(
                "value is {} bytes, not {value}",
                self.value_size
            )));
        }
        Ok(())
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }
}

/// `BPF_F_SEGV_ON_FAULT`.
const F_SEGV_ON_FAULT: u32 = 1 << 17;

/// The bpffs file name for map `name`: `.` as `_` (bpffs refuses dots).
pub(crate) fn pin_name(name: &str) -> String {
    name.replace('.', "_")
}

/// Iterator over a map's keys.
#[derive(Debug)]
pub struct Keys<'m> {
    map: &'m Map,
    last: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = vec![0u8; self.map.key_size as usize];
        match self.map.fd.next_key(self.last.as_deref(), &mut next) {
            Ok(()) => {
                self.last = Some(next.clone());
                Some(Ok(next))
            }
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(self.map.sys("next key", e)))
            }
        }
    }
}

/// The kernel's "no such element", for views that turn `None` into an
/// error.
fn not_found() -> SysError {
    SysError {
        cmd: "BPF_MAP_LOOKUP_ELEM",
        errno: Errno::NOENT,
    }
}

/// `V` from the front of `b`; zeroes where `b` is short (views check sizes
/// against the kernel's when made, so this only guards, never panics).
fn pod<V: Pod>(b: &[u8]) -> V {
    let mut v = V::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut v);
    let n = dst.len().min(b.len());
    dst[..n].copy_from_slice(&b[..n]);
    v
}
