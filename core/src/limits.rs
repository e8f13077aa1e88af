//! Caps checked before anything is allocated from a count read from input.

/// Largest type id the kernel accepts (`BTF_MAX_TYPE`); more types is an error.
pub const MAX_TYPES: u32 = 0x000f_ffff;

/// Deepest chain of modifiers, typedefs and arrays followed when resolving a
/// size or alignment (libbpf uses 32 as well).
pub const MAX_RESOLVE_DEPTH: u32 = 32;

/// Largest string section accepted (libbpf's `BTF_MAX_STR_OFFSET`).
pub const MAX_STR_LEN: u32 = 0x7fff_ffff;

/// Deepest nesting of map-in-map definitions followed in `.maps`.
pub const MAX_INNER_MAP_DEPTH: u32 = 4;
