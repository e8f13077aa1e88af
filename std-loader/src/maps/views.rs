//! Views of maps keyed and valued by plain data: hash, array, queue and
//! stack, LPM trie and bloom filter.

use core::marker::PhantomData;

use bytemuck::Pod;
use ember_core::object::MapType;
use ember_sys::{Errno, SysError};

use super::{ANY, Map, MapError, not_found, pod};

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
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
    pub fn get(&self, key: &K) -> Result<Option<V>, MapError> {
        Ok(self.map.lookup(bytemuck::bytes_of(key))?.map(|v| pod(&v)))
    }

    /// Inserts or updates.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn insert(&self, key: &K, value: &V, flags: u64) -> Result<(), MapError> {
        self.map
            .update(bytemuck::bytes_of(key), bytemuck::bytes_of(value), flags)
    }

    /// Removes `key`; `false` when absent.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, key: &K) -> Result<bool, MapError> {
        self.map.delete(bytemuck::bytes_of(key))
    }

    /// Every (key, value) pair.
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), MapError>> + '_ {
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
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
    pub fn get(&self, index: u32) -> Result<V, MapError> {
        let v = self
            .map
            .lookup(&index.to_ne_bytes())?
            .ok_or_else(|| self.map.sys("lookup", not_found()))?;
        Ok(pod(&v))
    }

    /// Sets the value at `index`.
    ///
    /// # Errors
    /// The kernel's error (`E2BIG` past the end).
    pub fn set(&self, index: u32, value: &V) -> Result<(), MapError> {
        self.map
            .update(&index.to_ne_bytes(), bytemuck::bytes_of(value), ANY)
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
            /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
            pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
            pub fn push(&self, value: &V, flags: u64) -> Result<(), MapError> {
                self.map.update(&[], bytemuck::bytes_of(value), flags)
            }

            /// Looks at the next value without removing it.
            ///
            /// # Errors
            /// The kernel's error other than "empty".
            pub fn peek(&self) -> Result<Option<V>, MapError> {
                Ok(self.map.lookup(&[])?.map(|v| pod(&v)))
            }

            /// Removes and returns the next value.
            ///
            /// # Errors
            /// The kernel's error other than "empty".
            pub fn pop(&self) -> Result<Option<V>, MapError> {
                let mut v = vec![0u8; self.map.value_len()];
                match self.map.fd.lookup_and_delete(&[], &mut v, 0) {
                    Ok(()) => Ok(Some(pod(&v))),
                    Err(SysError {
                        errno: Errno::NOENT,
                        ..
                    }) => Ok(None),
                    Err(e) => Err(self.map.sys("pop", e)),
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
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
    pub fn insert(&self, key: &LpmKey<K>, value: &V) -> Result<(), MapError> {
        self.map
            .update(&Self::key(key), bytemuck::bytes_of(value), ANY)
    }

    /// The value of the longest prefix matching `key` (give the full
    /// length to look an address up).
    ///
    /// # Errors
    /// The kernel's error other than "no match".
    pub fn get(&self, key: &LpmKey<K>) -> Result<Option<V>, MapError> {
        Ok(self.map.lookup(&Self::key(key))?.map(|v| pod(&v)))
    }

    /// Removes an exact prefix.
    ///
    /// # Errors
    /// The kernel's error.
    pub fn remove(&self, key: &LpmKey<K>) -> Result<bool, MapError> {
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
    /// [`MapErrorKind::Mismatch`](super::MapErrorKind::Mismatch) naming what differs.
    pub fn new(map: &'m Map) -> Result<Self, MapError> {
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
    pub fn insert(&self, value: &V) -> Result<(), MapError> {
        self.map.update(&[], bytemuck::bytes_of(value), ANY)
    }

    /// Whether `value` may be present (false positives possible, false
    /// negatives not).
    ///
    /// # Errors
    /// The kernel's error other than "absent".
    pub fn contains(&self, value: &V) -> Result<bool, MapError> {
        let mut v = bytemuck::bytes_of(value).to_vec();
        match self.map.fd.lookup(&[], &mut v, 0) {
            Ok(()) => Ok(true),
            Err(SysError {
                errno: Errno::NOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(self.map.sys("lookup", e)),
        }
    }
}
