//! Per-CPU views: one value per possible CPU.

use core::marker::PhantomData;

use bytemuck::Pod;
use ember_core::object::MapType;

use ember_sys::SysError;

use super::{ANY, Map, MapError, MapErrorKind, not_found, pod};

/// One value per possible CPU, indexed by CPU number, as per-CPU maps
/// hold them. Reads come back in this shape; writes take it (or any slice
/// of one value per possible CPU).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerCpuValues<V>(Vec<V>);

impl<V: Pod> PerCpuValues<V> {
    /// One value per possible CPU, made by `f(cpu)`.
    ///
    /// # Errors
    /// The possible-CPU count cannot be read.
    pub fn from_fn(f: impl FnMut(usize) -> V) -> Result<Self, SysError> {
        let n = ember_sys::cpu::possible_cpus()?;
        Ok(PerCpuValues((0..n as usize).map(f).collect()))
    }

    /// The value of CPU `cpu`.
    pub fn cpu(&self, cpu: usize) -> Option<&V> {
        self.0.get(cpu)
    }

    /// The values, by CPU.
    pub fn into_vec(self) -> Vec<V> {
        self.0
    }
}

impl<V> core::ops::Deref for PerCpuValues<V> {
    type Target = [V];
    fn deref(&self) -> &[V] {
        &self.0
    }
}

impl<V> core::ops::DerefMut for PerCpuValues<V> {
    fn deref_mut(&mut self) -> &mut [V] {
        &mut self.0
    }
}

/// The kernel's per-CPU value buffer split into one `V` per CPU: each
/// CPU's slot is the value size rounded up to 8 bytes.
fn split_per_cpu<V: Pod>(v: &[u8], value_size: u32) -> PerCpuValues<V> {
    PerCpuValues(
        v.chunks((value_size as usize).next_multiple_of(8).max(1))
            .map(pod)
            .collect(),
    )
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

impl Map {
    /// `values` as one per-CPU value buffer, checked against the number
    /// of possible CPUs (which the kernel reads and writes per lookup).
    fn per_cpu_bytes<V: Pod>(&self, values: &[V]) -> Result<Vec<u8>, MapError> {
        let cpus = ember_sys::cpu::possible_cpus().map_err(|e| self.sys("update", e))?;
        join_per_cpu(values, self.value_size, cpus as usize).ok_or_else(|| {
            self.error(
                "update",
                MapErrorKind::CpuCount {
                    expected: cpus,
                    given: values.len(),
                },
            )
        })
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
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
    pub fn get(&self, index: u32) -> Result<PerCpuValues<V>, MapError> {
        let v = self
            .map
            .lookup(&index.to_ne_bytes())?
            .ok_or_else(|| self.map.sys("lookup", not_found()))?;
        Ok(split_per_cpu(&v, self.map.value_size))
    }

    /// Sets the values at `index`; `values` needs one per possible CPU.
    ///
    /// # Errors
    /// `EINVAL` for the wrong number of values; the kernel's error.
    pub fn set(&self, index: u32, values: &[V]) -> Result<(), MapError> {
        let b = self.map.per_cpu_bytes(values)?;
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
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
    pub fn get(&self, key: &K) -> Result<Option<PerCpuValues<V>>, MapError> {
        Ok(self
            .map
            .lookup(bytemuck::bytes_of(key))?
            .map(|v| split_per_cpu(&v, self.map.value_size)))
    }

    /// Inserts or updates; `values` needs one per possible CPU.
    ///
    /// # Errors
    /// `EINVAL` for the wrong number of values; the kernel's error.
    pub fn insert(&self, key: &K, values: &[V], flags: u64) -> Result<(), MapError> {
        let b = self.map.per_cpu_bytes(values)?;
        self.map.update(bytemuck::bytes_of(key), &b, flags)
    }
}
