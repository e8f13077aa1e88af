//! Maps of a loaded object (or opened from a pin): byte-level access on
//! [`Map`], and typed views for each map family — [`HashMap`], [`Array`],
//! [`PerCpuArray`]/[`PerCpuHashMap`], [`Queue`]/[`Stack`], [`LpmTrie`],
//! [`BloomFilter`], [`ProgArray`] and [`MapOfMaps`]. Types cross the
//! boundary as plain bytes through [`bytemuck::Pod`]; every view checks
//! the map's type and sizes when it is made, so a mismatch is an error
//! and never a short read.

use core::fmt;
use core::marker::PhantomData;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

use bytemuck::Pod;
use ember_core::object::{Map as MapDef, MapType};
use ember_sys::{AsFd, BorrowedFd, Errno, MapFd, OwnedFd, SysError};

/// `BPF_ANY`.
pub const ANY: u64 = 0;
/// `BPF_NOEXIST`: create only.
pub const NOEXIST: u64 = 1;
/// `BPF_EXIST`: update only.
pub const EXIST: u64 = 2;

/// A map: its fd, name and shape.
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
}

/// Why a typed view cannot be made over a map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapMismatch {
    /// The map.
    pub map: String,
    /// What differs.
    pub detail: String,
}

impl fmt::Display for MapMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "map '{}': {}", self.map, self.detail)
    }
}

impl core::error::Error for MapMismatch {}

impl Map {
    /// Wraps a map fd, describing the map as the kernel reports it (so a
    /// view's size checks hold for the real map, whatever was expected).
    ///
    /// # Errors
    /// The kernel's error for `BPF_OBJ_GET_INFO_BY_FD`.
    pub fn from_fd(name: String, fd: OwnedFd, reused: bool) -> Result<Map, SysError> {
        let info = ember_sys::map_info(fd.as_fd())?;
        let fd = MapFd::from_fd(fd)?;
        Ok(Map {
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
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Map, SysError> {
        let path = path.as_ref();
        let p =
            std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| SysError {
                cmd: "BPF_OBJ_GET",
                errno: Errno::INVAL,
            })?;
        let fd = ember_sys::obj_get(&p)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Map::from_fd(name, fd, true)
    }

    /// What differs between this (pinned) map and the object's definition
    /// `def` created with `max_entries`, as libbpf's reuse check sees it.
    pub(crate) fn differs_from(&self, def: &MapDef<'_>, max_entries: u32) -> Option<String> {
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
        if self.flags != def.map_flags {
            d.push(format!("flags {:#x} vs {:#x}", self.flags, def.map_flags));
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
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, SysError> {
        let mut v = vec![0u8; self.fd.value_len()];
        match self.fd.lookup(key, &mut v, 0) {
            Ok(()) => Ok(Some(v)),
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Inserts or updates `key` (`flags`: [`ANY`], [`NOEXIST`], [`EXIST`]).
    ///
    /// # Errors
    /// The kernel's error (`E2BIG` when full, `EEXIST`/`ENOENT` per flags).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), SysError> {
        self.fd.update(key, value, flags)
    }

    /// Deletes `key`; `false` when it was absent.
    ///
    /// # Errors
    /// The kernel's error other than "not found".
    pub fn delete(&self, key: &[u8]) -> Result<bool, SysError> {
        match self.fd.delete(key) {
            Ok(()) => Ok(true),
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
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
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), SysError> {
        let p =
            std::ffi::CString::new(path.as_ref().as_os_str().as_encoded_bytes()).map_err(|_| {
                SysError {
                    cmd: "BPF_OBJ_PIN",
                    errno: Errno::INVAL,
                }
            })?;
        ember_sys::obj_pin(self.fd(), &p)
    }

    fn expect(&self, types: &[MapType], key: usize, value: usize) -> Result<(), MapMismatch> {
        let bad = |detail| MapMismatch {
            map: self.name.clone(),
            detail,
        };
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
    type Item = Result<Vec<u8>, SysError>;

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
                Some(Err(e))
            }
        }
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

/// A hash or LRU hash map with keys `K` and values `V`.
#[derive(Debug)]
pub struct HashMap<'m, K, V> {
    map: &'m Map,
    _t: PhantomData<(K, V)>,
}

impl<'m, K: Pod, V: Pod> HashMap<'m, K, V> {
    /// A view over `map`, which must be a (LRU) hash of `K` → `V`.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(
            &[MapType::HASH, MapType::LRU_HASH],
            size_of::<K>(),
            size_of::<V>(),
        )?;
        Ok(HashMap {
            map,
            _t: PhantomData,
        })
    }

    /// The value for `key`.
    ///
    /// # Errors
    /// The kernel's error other than "not found".
    pub fn get(&self, key: &K) -> Result<Option<V>, SysError> {
        Ok(self.map.lookup(bytemuck::bytes_of(key))?.map(|v| pod(&v)))
    }

    /// Inserts or updates.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), SysError> {
        self.map
            .update(bytemuck::bytes_of(key), bytemuck::bytes_of(value), flags)
    }

    /// Removes `key`; `false` when absent.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, key: &K) -> Result<bool, SysError> {
        self.map.delete(bytemuck::bytes_of(key))
    }

    /// Every (key, value) pair.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), SysError>> + '_ {
        self.map.keys().filter_map(move |k| {
            let k = match k {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match self.map.lookup(&k) {
                Ok(Some(v)) => Some(Ok((pod(&k), pod(&v)))),
                // Deleted between next_key and lookup.
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }
}

/// An array map of `V`.
#[derive(Debug)]
pub struct Array<'m, V> {
    map: &'m Map,
    _t: PhantomData<V>,
}

impl<'m, V: Pod> Array<'m, V> {
    /// A view over `map`, which must be an array of `V`.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(&[MapType::ARRAY], 4, size_of::<V>())?;
        Ok(Array {
            map,
            _t: PhantomData,
        })
    }

    /// The value at `index`.
    ///
    /// # Errors
    /// The kernel's error (`ENOENT` past the end).
    pub fn get(&self, index: u32) -> Result<V, SysError> {
        let v = self.map.lookup(&index.to_ne_bytes())?.ok_or(SysError {
            cmd: "BPF_MAP_LOOKUP_ELEM",
            errno: Errno::NOENT,
        })?;
        Ok(pod(&v))
    }

    /// Sets the value at `index`.
    ///
    /// # Errors
    /// The kernel's error (`E2BIG` past the end).
    pub fn set(&self, index: u32, value: &V) -> Result<(), SysError> {
        self.map
            .update(&index.to_ne_bytes(), bytemuck::bytes_of(value), ANY)
    }
}

fn split_per_cpu<V: Pod>(v: &[u8], value_size: u32) -> Vec<V> {
    v.chunks((value_size as usize).next_multiple_of(8).max(1))
        .map(pod)
        .collect()
}

fn join_per_cpu<V: Pod>(values: &[V], value_size: u32, cpus: usize) -> Option<Vec<u8>> {
    if values.len() != cpus {
        return None;
    }
    let slot = (value_size as usize).next_multiple_of(8);
    let mut out = vec![0u8; slot * cpus];
    for (chunk, v) in out.chunks_mut(slot).zip(values) {
        chunk[..size_of::<V>()].copy_from_slice(bytemuck::bytes_of(v));
    }
    Some(out)
}

/// The possible CPUs: one value slot each ([`ember_sys::cpu::possible_cpus`]).
fn possible_cpus() -> Result<usize, SysError> {
    let n = ember_sys::cpu::possible_cpus()?;
    usize::try_from(n).map_err(|_| wrong_cpus("possible cpus"))
}

fn wrong_cpus(cmd: &'static str) -> SysError {
    SysError {
        cmd,
        errno: Errno::INVAL,
    }
}

/// A per-CPU array of `V`: one value per possible CPU.
#[derive(Debug)]
pub struct PerCpuArray<'m, V> {
    map: &'m Map,
    _t: PhantomData<V>,
}

impl<'m, V: Pod> PerCpuArray<'m, V> {
    /// A view over `map`, which must be a per-CPU array of `V`.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(&[MapType::PERCPU_ARRAY], 4, size_of::<V>())?;
        Ok(PerCpuArray {
            map,
            _t: PhantomData,
        })
    }

    /// The values at `index`, one per possible CPU.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn get(&self, index: u32) -> Result<Vec<V>, SysError> {
        let v = self.map.lookup(&index.to_ne_bytes())?.ok_or(SysError {
            cmd: "BPF_MAP_LOOKUP_ELEM",
            errno: Errno::NOENT,
        })?;
        Ok(split_per_cpu(&v, self.map.value_size))
    }

    /// Sets the values at `index`; `values` needs one per possible CPU.
    ///
    /// # Errors
    /// `EINVAL` for the wrong number of values; the kernel's error.
    pub fn set(&self, index: u32, values: &[V]) -> Result<(), SysError> {
        let b = join_per_cpu(values, self.map.value_size, possible_cpus()?)
            .ok_or(wrong_cpus("BPF_MAP_UPDATE_ELEM"))?;
        self.map.update(&index.to_ne_bytes(), &b, ANY)
    }
}

/// A per-CPU (or LRU per-CPU) hash of `K` → one `V` per possible CPU.
#[derive(Debug)]
pub struct PerCpuHashMap<'m, K, V> {
    map: &'m Map,
    _t: PhantomData<(K, V)>,
}

impl<'m, K: Pod, V: Pod> PerCpuHashMap<'m, K, V> {
    /// A view over `map`, which must be a per-CPU hash of `K` → `V`.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(
            &[MapType::PERCPU_HASH, MapType::LRU_PERCPU_HASH],
            size_of::<K>(),
            size_of::<V>(),
        )?;
        Ok(PerCpuHashMap {
            map,
            _t: PhantomData,
        })
    }

    /// The per-CPU values for `key`.
    ///
    /// # Errors
    /// The kernel's error other than "not found".
    pub fn get(&self, key: &K) -> Result<Option<Vec<V>>, SysError> {
        Ok(self
            .map
            .lookup(bytemuck::bytes_of(key))?
            .map(|v| split_per_cpu(&v, self.map.value_size)))
    }

    /// Inserts or updates; `values` needs one per possible CPU.
    ///
    /// # Errors
    /// `EINVAL` for the wrong number of values; the kernel's error.
    pub fn insert(&self, key: &K, values: &[V], flags: u64) -> Result<(), SysError> {
        let b = join_per_cpu(values, self.map.value_size, possible_cpus()?)
            .ok_or(wrong_cpus("BPF_MAP_UPDATE_ELEM"))?;
        self.map.update(bytemuck::bytes_of(key), &b, flags)
    }
}

/// A FIFO queue map of `V`.
#[derive(Debug)]
pub struct Queue<'m, V> {
    map: &'m Map,
    _t: PhantomData<V>,
}

/// A LIFO stack map of `V`.
#[derive(Debug)]
pub struct Stack<'m, V> {
    map: &'m Map,
    _t: PhantomData<V>,
}

macro_rules! push_pop {
    ($ty:ident, $map_type:expr) => {
        impl<'m, V: Pod> $ty<'m, V> {
            /// A view over `map`, which must hold values of `V`.
            ///
            /// # Errors
            /// [`MapMismatch`] naming what differs.
            pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
                map.expect(&[$map_type], 0, size_of::<V>())?;
                Ok($ty {
                    map,
                    _t: PhantomData,
                })
            }

            /// Pushes `value` (`BPF_EXIST` overwrites the oldest when full).
            ///
            /// # Errors
            /// The kernel's error (`E2BIG` when full).
            pub fn push(&self, value: &V, flags: u64) -> Result<(), SysError> {
                self.map.update(&[], bytemuck::bytes_of(value), flags)
            }

            /// Looks at the next value without removing it.
            ///
            /// # Errors
            /// The kernel's error other than "empty".
            pub fn peek(&self) -> Result<Option<V>, SysError> {
                Ok(self.map.lookup(&[])?.map(|v| pod(&v)))
            }

            /// Removes and returns the next value.
            ///
            /// # Errors
            /// The kernel's error other than "empty".
            pub fn pop(&self) -> Result<Option<V>, SysError> {
                let mut v = vec![0u8; self.map.value_len()];
                match self.map.fd.lookup_and_delete(&[], &mut v, 0) {
                    Ok(()) => Ok(Some(pod(&v))),
                    Err(SysError {
                        errno: Errno::NOENT,
                        ..
                    }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    };
}

push_pop!(Queue, MapType::QUEUE);
push_pop!(Stack, MapType::STACK);

/// An LPM trie keyed by a prefix length and `K` (the address bytes).
#[derive(Debug)]
pub struct LpmTrie<'m, K, V> {
    map: &'m Map,
    _t: PhantomData<(K, V)>,
}

/// An LPM trie key: `struct bpf_lpm_trie_key` followed by the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LpmKey<K> {
    /// Prefix length in bits.
    pub prefix_len: u32,
    /// The address bytes.
    pub data: K,
}

impl<'m, K: Pod, V: Pod> LpmTrie<'m, K, V> {
    /// A view over `map`, which must be an LPM trie of `K` → `V`.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(&[MapType::LPM_TRIE], 4 + size_of::<K>(), size_of::<V>())?;
        Ok(LpmTrie {
            map,
            _t: PhantomData,
        })
    }

    fn key(k: &LpmKey<K>) -> Vec<u8> {
        let mut b = k.prefix_len.to_ne_bytes().to_vec();
        b.extend_from_slice(bytemuck::bytes_of(&k.data));
        b
    }

    /// Inserts a prefix.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn insert(&self, key: &LpmKey<K>, value: &V) -> Result<(), SysError> {
        self.map
            .update(&Self::key(key), bytemuck::bytes_of(value), ANY)
    }

    /// The value of the longest prefix matching `key` (give the full
    /// length to look an address up).
    ///
    /// # Errors
    /// The kernel's error other than "no match".
    pub fn get(&self, key: &LpmKey<K>) -> Result<Option<V>, SysError> {
        Ok(self.map.lookup(&Self::key(key))?.map(|v| pod(&v)))
    }

    /// Removes an exact prefix.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, key: &LpmKey<K>) -> Result<bool, SysError> {
        self.map.delete(&Self::key(key))
    }
}

/// A bloom filter of `V`.
#[derive(Debug)]
pub struct BloomFilter<'m, V> {
    map: &'m Map,
    _t: PhantomData<V>,
}

impl<'m, V: Pod> BloomFilter<'m, V> {
    /// A view over `map`, which must be a bloom filter of `V`.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(&[MapType::BLOOM_FILTER], 0, size_of::<V>())?;
        Ok(BloomFilter {
            map,
            _t: PhantomData,
        })
    }

    /// Adds `value`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn insert(&self, value: &V) -> Result<(), SysError> {
        self.map.update(&[], bytemuck::bytes_of(value), ANY)
    }

    /// Whether `value` may be present (false positives possible, false
    /// negatives not).
    ///
    /// # Errors
    /// The kernel's error other than "absent".
    pub fn contains(&self, value: &V) -> Result<bool, SysError> {
        let mut v = bytemuck::bytes_of(value).to_vec();
        match self.map.fd.lookup(&[], &mut v, 0) {
            Ok(()) => Ok(true),
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A prog array (tail-call table).
#[derive(Debug)]
pub struct ProgArray<'m> {
    map: &'m Map,
}

/// An array or hash of maps.
#[derive(Debug)]
pub struct MapOfMaps<'m> {
    map: &'m Map,
}

impl<'m> ProgArray<'m> {
    /// A view over `map`, which must be a prog array.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(&[MapType::PROG_ARRAY], 4, 4)?;
        Ok(ProgArray { map })
    }

    /// Puts program `prog` at `index`.
    ///
    /// # Errors
    /// The kernel's error (`EINVAL` for an incompatible program).
    pub fn set(&self, index: u32, prog: BorrowedFd<'_>) -> Result<(), SysError> {
        let fd = prog.as_raw_fd() as u32;
        self.map
            .update(&index.to_ne_bytes(), &fd.to_ne_bytes(), ANY)
    }

    /// The id of the program at `index` (the kernel returns ids, not fds).
    ///
    /// # Errors
    /// The kernel's error other than "empty slot".
    pub fn get_id(&self, index: u32) -> Result<Option<u32>, SysError> {
        Ok(self.map.lookup(&index.to_ne_bytes())?.map(|v| pod(&v)))
    }

    /// Empties slot `index`.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn clear(&self, index: u32) -> Result<bool, SysError> {
        self.map.delete(&index.to_ne_bytes())
    }
}

impl<'m> MapOfMaps<'m> {
    /// A view over `map`, which must be an array or hash of maps.
    ///
    /// # Errors
    /// [`MapMismatch`] naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapMismatch> {
        map.expect(
            &[MapType::ARRAY_OF_MAPS, MapType::HASH_OF_MAPS],
            map.key_size as usize,
            4,
        )?;
        Ok(MapOfMaps { map })
    }

    /// Puts the map `inner` under `key`.
    ///
    /// # Errors
    /// The kernel's error (`EINVAL` when `inner` does not match the
    /// template).
    pub fn set(&self, key: &[u8], inner: BorrowedFd<'_>) -> Result<(), SysError> {
        let fd = inner.as_raw_fd() as u32;
        self.map.update(key, &fd.to_ne_bytes(), ANY)
    }

    /// The id of the map under `key`.
    ///
    /// # Errors
    /// The kernel's error other than "absent".
    pub fn get_id(&self, key: &[u8]) -> Result<Option<u32>, SysError> {
        Ok(self.map.lookup(key)?.map(|v| pod(&v)))
    }
}
