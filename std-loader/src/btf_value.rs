//! Bytes decoded through a BTF type into JSON, as `bpftool map dump`'s
//! `formatted` output shows them: integers as numbers, bitfields and
//! 128-bit integers as hex strings, `char` arrays as strings, structs and
//! unions as objects by member name, enums by enumerator name. (Object
//! keys come out sorted, not in member order.) Used by `ember run --event`, `--dump` and `ember map
//! dump`.
//!
//! The bytes and the BTF are both untrusted: decoding never reads outside
//! `data`, stops at a depth limit, and charges every value it produces
//! (with its member name and string) to a budget proportional to
//! `data`'s length, so zero-sized elements or long member names cannot
//! multiply the output; past the budget, values are `null`.

use ember_core::btf::{Btf, Kind, TypeId};
use serde_json::{Map, Value};

/// Output bytes (estimated) allowed per input byte.
const BUDGET_PER_BYTE: usize = 32;
/// What one value costs against the budget, before names and strings.
const VALUE_COST: usize = 32;

/// Nesting deeper than this decodes as `null`.
const MAX_DEPTH: u32 = 32;

/// `data` decoded as type `id` of `btf`. Bytes short of the type's size
/// decode what they cover; fields past the end are `null`.
pub fn decode(btf: &Btf<'_>, id: TypeId, data: &[u8]) -> Value {
    let mut budget = data
        .len()
        .saturating_mul(BUDGET_PER_BYTE)
        .saturating_add(4096);
    value(btf, id, data, 0, &mut budget)
}

/// The type a user names: `struct event`, `union u`, `enum e`, or a
/// typedef or base type name (`u64`, `event_t`).
pub fn find_type(btf: &Btf<'_>, name: &str) -> Option<TypeId> {
    let name = name.trim();
    let (kinds, bare): (&[Kind], &str) = if let Some(n) = name.strip_prefix("struct ") {
        (&[Kind::Struct], n)
    } else if let Some(n) = name.strip_prefix("union ") {
        (&[Kind::Union], n)
    } else if let Some(n) = name.strip_prefix("enum ") {
        (&[Kind::Enum, Kind::Enum64], n)
    } else {
        (
            &[
                Kind::Typedef,
                Kind::Int,
                Kind::Float,
                Kind::Struct,
                Kind::Union,
            ],
            name,
        )
    };
    kinds
        .iter()
        .find_map(|k| btf.find_by_name_kind(bare.trim(), *k))
}

fn value(btf: &Btf<'_>, id: TypeId, data: &[u8], depth: u32, budget: &mut usize) -> Value {
    if depth > MAX_DEPTH || *budget < VALUE_COST {
        return Value::Null;
    }
    *budget -= VALUE_COST;
    let Ok(id) = btf.skip_mods_and_typedefs(id) else {
        return Value::Null;
    };
    let Some(t) = btf.get(id) else {
        return Value::Null;
    };
    let size = usize::try_from(t.size()).unwrap_or(usize::MAX);
    match t.kind() {
        Kind::Int => {
            let Some(i) = t.as_int() else {
                return Value::Null;
            };
            int_value(data, i.offset(), i.bits(), i.is_signed(), i.is_bool(), size)
        }
        Kind::Enum | Kind::Enum64 => {
            let Some(raw) = uint(data.get(..size).unwrap_or_default()) else {
                return Value::Null;
            };
            match t
                .enumerators()
                .find(|e| e.value & mask(size * 8) == raw)
                .and_then(|e| btf.str_at(e.name_off).ok())
            {
                Some(n) if *budget >= n.len() => {
                    *budget -= n.len();
                    Value::from(n.to_owned())
                }
                _ => Value::from(raw),
            }
        }
        Kind::Ptr => uint(data.get(..8).or(data.get(..4)).unwrap_or_default())
            .map_or(Value::Null, |p| Value::from(format!("{p:#x}"))),
        Kind::Float => match data.get(..size) {
            Some(b) if size == 4 => Value::from(f64::from(f32::from_ne_bytes(
                b.try_into().unwrap_or_default(),
            ))),
            Some(b) if size == 8 => {
                Value::from(f64::from_ne_bytes(b.try_into().unwrap_or_default()))
            }
            _ => Value::Null,
        },
        Kind::Array => array(btf, &t, data, depth, budget),
        Kind::Struct | Kind::Union => {
            let mut obj = Map::new();
            composite(btf, &t, data, depth, budget, &mut obj);
            Value::Object(obj)
        }
        _ => Value::Null,
    }
}

fn array(
    btf: &Btf<'_>,
    t: &ember_core::btf::Type<'_>,
    data: &[u8],
    depth: u32,
    budget: &mut usize,
) -> Value {
    let Some(a) = t.as_array() else {
        return Value::Null;
    };
    let elem_size = btf
        .resolve_size(a.elem_type)
        .ok()
        .and_then(|s| usize::try_from(s).ok())
        .unwrap_or(0);
    let n = usize::try_from(a.nelems).unwrap_or(0);
    // char arrays read as strings, up to the first NUL.
    let elem = btf
        .skip_mods_and_typedefs(a.elem_type)
        .ok()
        .and_then(|e| btf.get(e));
    if elem_size == 1
        && elem.is_some_and(|e| {
            e.as_int()
                .is_some_and(|i| i.is_char() || btf.name(&e) == Ok("char"))
        })
    {
        // As bpftool: a string only when a NUL ends printable text within
        // the array; anything else is an array of numbers.
        let bytes = data.get(..n.min(data.len())).unwrap_or_default();
        if let Some(end) = bytes.iter().position(|&b| b == 0) {
            if bytes[..end].iter().all(|b| (0x20..0x7f).contains(b)) && *budget >= end {
                *budget -= end;
                return Value::from(String::from_utf8_lossy(&bytes[..end]).into_owned());
            }
        }
    }
    let mut out = Vec::new();
    for i in 0..n {
        // Charged here too: past the depth limit `value` returns null
        // without charging, and an array of itself (which parses) would
        // otherwise fill memory with nulls.
        if *budget < VALUE_COST {
            break;
        }
        *budget -= VALUE_COST;
        let off = i.saturating_mul(elem_size);
        if elem_size > 0 && off >= data.len() {
            break;
        }
        out.push(value(
            btf,
            a.elem_type,
            data.get(off..).unwrap_or_default(),
            depth + 1,
            budget,
        ));
    }
    Value::Array(out)
}

fn composite(
    btf: &Btf<'_>,
    t: &ember_core::btf::Type<'_>,
    data: &[u8],
    depth: u32,
    budget: &mut usize,
    obj: &mut Map<String, Value>,
) {
    for m in t.members() {
        if *budget < VALUE_COST {
            break;
        }
        *budget -= VALUE_COST;
        let byte = usize::try_from(m.bit_offset / 8).unwrap_or(usize::MAX);
        let name = btf.str_at(m.name_off).unwrap_or("");
        let field = data.get(byte..).unwrap_or_default();
        let v = if m.bitfield_size > 0 {
            bitfield(field, m.bit_offset % 8, m.bitfield_size)
        } else {
            value(btf, m.type_id, field, depth + 1, budget)
        };
        match (name, v) {
            // Anonymous struct/union members read as the parent's fields.
            ("", Value::Object(inner)) => obj.extend(inner),
            ("", _) => {}
            (n, v) => {
                if *budget < n.len() {
                    break;
                }
                *budget -= n.len();
                obj.insert(n.to_owned(), v);
            }
        }
    }
}

/// A bitfield as bpftool prints one: the raw bits in hex.
fn bitfield(data: &[u8], bit: u32, bits: u32) -> Value {
    let need = usize::try_from((bit + bits).div_ceil(8)).unwrap_or(usize::MAX);
    match int_value(data, bit, bits, false, false, need) {
        Value::Number(n) => n
            .as_u64()
            .map_or(Value::Null, |v| Value::from(format!("{v:#x}"))),
        _ => Value::Null,
    }
}

/// An integer of `bits` bits starting `offset` bits into `data` (native
/// byte order, as the kernel wrote it).
fn int_value(
    data: &[u8],
    offset: u32,
    bits: u32,
    signed: bool,
    is_bool: bool,
    size: usize,
) -> Value {
    let Some(bytes) = data.get(..size) else {
        return Value::Null;
    };
    if bits > 64 || size > 8 {
        // __int128 and wider: hex, as bpftool prints them.
        let mut s = String::from("0x");
        let iter: Box<dyn Iterator<Item = &u8>> = if cfg!(target_endian = "little") {
            Box::new(bytes.iter().rev())
        } else {
            Box::new(bytes.iter())
        };
        for b in iter {
            s.push_str(&format!("{b:02x}"));
        }
        return Value::from(s);
    }
    let Some(raw) = uint(bytes) else {
        return Value::Null;
    };
    let v = raw.checked_shr(offset).unwrap_or(0) & mask(usize::try_from(bits).unwrap_or(64));
    if is_bool {
        return Value::from(v != 0);
    }
    if signed && bits > 0 && bits < 64 && v >> (bits - 1) & 1 == 1 {
        return Value::from((v | !mask(usize::try_from(bits).unwrap_or(64))) as i64);
    }
    if signed && bits == 64 {
        return Value::from(v as i64);
    }
    Value::from(v)
}

fn mask(bits: usize) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// Up to 8 bytes as a native-endian unsigned integer.
fn uint(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 8 {
        return None;
    }
    let mut w = [0u8; 8];
    if cfg!(target_endian = "little") {
        w[..b.len()].copy_from_slice(b);
    } else {
        w[8 - b.len()..].copy_from_slice(b);
    }
    Some(u64::from_ne_bytes(w))
}

/// Every entry of `map` as `{"key": .., "value": ..}`, decoded through the
/// map's BTF as the kernel holds it (its key and value type ids in the
/// BTF object it was created with), or as lowercase hex strings when the
/// map has none. Per-CPU values are not split.
///
/// # Errors
/// The kernel's error reading the map.
pub fn dump_map(map: &crate::Map) -> Result<Vec<Value>, crate::MapError> {
    let info = ember_sys::map_info(map.fd()).ok();
    let btf_bytes = info.as_ref().and_then(|i| {
        let fd = ember_sys::get_fd_by_id(i.btf_id, 0).ok()?;
        let mut data = Vec::new();
        ember_sys::btf_info_full(ember_sys::AsFd::as_fd(&fd), Some(&mut data)).ok()?;
        Some(data)
    });
    let btf = btf_bytes.as_deref().and_then(|b| Btf::parse(b).ok());
    let typed = |id: u32, bytes: &[u8]| match (&btf, id) {
        (Some(b), id) if id != 0 => decode(b, TypeId(id), bytes),
        _ => Value::from(hex(bytes)),
    };
    let (k, v) = info
        .as_ref()
        .map_or((0, 0), |i| (i.btf_key_type_id, i.btf_value_type_id));
    let mut out = Vec::new();
    for key in map.keys() {
        let key = key?;
        let Some(value) = map.lookup(&key)? else {
            continue;
        };
        let mut e = Map::new();
        e.insert("key".into(), typed(k, &key));
        e.insert("value".into(), typed(v, &value));
        out.push(Value::Object(e));
    }
    Ok(out)
}

/// Lowercase hex, no separators.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from_digit(u32::from(x >> 4), 16).unwrap_or('0'));
        s.push(char::from_digit(u32::from(x & 15), 16).unwrap_or('0'));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_and_masks() {
        assert_eq!(int_value(&[0xff], 0, 8, true, false, 1), Value::from(-1));
        assert_eq!(int_value(&[0xff], 0, 8, false, false, 1), Value::from(255));
        assert_eq!(int_value(&[0b0110], 1, 2, false, false, 1), Value::from(3));
        assert_eq!(int_value(&[1], 0, 8, false, true, 1), Value::from(true));
        assert_eq!(int_value(&[], 0, 32, false, false, 4), Value::Null);
        assert_eq!(uint(&[0; 9]), None);
    }
}
