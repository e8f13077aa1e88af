//! Values for `.kconfig` externs: `LINUX_KERNEL_VERSION` from the running
//! kernel's release, `LINUX_HAS_SYSCALL_WRAPPER` from kallsyms (libbpf
//! probes with a kprobe instead; see
//! [`syscall_wrapper_symbol`](crate::kallsyms::syscall_wrapper_symbol)),
//! `LINUX_HAS_BPF_COOKIE` from a probe, options from `/proc/config.gz` or
//! `/boot/config-<release>`.

use std::collections::HashMap;

use ember_core::btf::{Btf, Kind, TypeId};
use ember_core::object::{ExternKind, Object};

use super::LoadError;

pub(crate) use ember_core::load::kernel_version;

/// Parses kernel config text: `CONFIG_X=value` and `# CONFIG_X is not set`
/// (as `n`); other lines are ignored. Where an option is given twice the
/// first wins, as in libbpf, which stops looking once an extern is set.
pub fn parse_config(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        // `lines` drops a `\r` before `\n`, but not bare ones at the end.
        let line = line.trim_end_matches('\r');
        let (k, v) = match line.strip_prefix("# ") {
            // Only a symbol name: a comment that merely ends in "is not
            // set" names no option.
            Some(rest) => match rest.strip_suffix(" is not set") {
                Some(name) if name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') => {
                    (name, "n")
                }
                _ => continue,
            },
            None => match line.split_once('=') {
                Some(kv) => kv,
                None => continue,
            },
        };
        if k.starts_with("CONFIG_") {
            m.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
    }
    m
}

/// A kernel config is about 10,000 lines; this bounds what a corrupt or
/// hostile `/proc/config.gz` can make us allocate.
const CONFIG_LIMIT: usize = 16 << 20;

fn read_config(release: &str) -> Option<String> {
    const GZ: &str = "/proc/config.gz";
    if let Ok(gz) = std::fs::read(GZ) {
        match crate::gzip::decompress(&gz, CONFIG_LIMIT).map(String::from_utf8) {
            Ok(Ok(s)) => return Some(s),
            Ok(Err(_)) => log::warn!("{GZ}: not UTF-8 text; trying /boot/config-{release}"),
            Err(e) => log::warn!("{GZ}: {e}; trying /boot/config-{release}"),
        }
    }
    std::fs::read_to_string(format!("/boot/config-{release}")).ok()
}

/// A config number as C's `strtoull(v, .., 0)` reads it, as libbpf does:
/// `0x` hex, a leading `0` octal, else decimal; a `-` negates modulo 2^64.
fn parse_u64(v: &str) -> Option<u64> {
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(h, 16)
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(digits.get(1..)?, 8)
    } else {
        digits.parse::<u64>()
    }
    .ok()?;
    Some(if neg { n.wrapping_neg() } else { n })
}

/// Whether `x` (negatives wrapped to u64) fits a `size`-byte integer
/// without loss: libbpf's range rule, so a value too large for the
/// extern's type is an error rather than silently cut.
fn fits(x: u64, size: usize, signed: bool) -> bool {
    let Some(bits) = u32::try_from(size).ok().and_then(|s| s.checked_mul(8)) else {
        return false;
    };
    if bits == 0 {
        return false;
    }
    if bits >= 64 {
        return true;
    }
    if signed {
        // -2^(b-1) <= x < 2^(b-1), shifted up by 2^(b-1) into [0, 2^b).
        x.wrapping_add(1 << (bits - 1)) < (1 << bits)
    } else {
        x >> bits == 0
    }
}

/// Encodes one config value (text as in the config file) for a
/// `.kconfig` extern of BTF type `ty`, into `out` (the extern's bytes).
///
/// The rules are libbpf's: a bool takes `y`, `n`, 0 or 1; a `char` takes
/// `y`/`n`/`m` as letters or a number; other integers take a number as
/// `strtoull(.., 0)` reads it (or `y`/`n` as 1/0) that fits their size and
/// sign; an enum (libbpf's tristate) takes `y`/`n`/`m`; a `char` array
/// takes a quoted string, cut to leave a NUL.
///
/// # Errors
/// A type that cannot hold a config value, or a value it cannot hold, as
/// text naming the value.
pub fn encode(btf: &Btf<'_>, ty: TypeId, v: &str, out: &mut [u8]) -> Result<(), String> {
    let id = btf.skip_mods_and_typedefs(ty).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(id).map_err(|e| e.to_string())?;
    let tri = |v: &str| match v {
        "y" => Some(1u64),
        "n" => Some(0),
        "m" => Some(2),
        _ => None,
    };
    let put = |out: &mut [u8], x: u64| {
        let n = out.len().min(8);
        if let (Some(d), Some(s)) = (out.get_mut(..n), x.to_ne_bytes().get(..n)) {
            // Little-endian hosts keep the low bytes first; big-endian
            // hosts need the value's low bytes, at the end.
            if cfg!(target_endian = "big") {
                let be = x.to_be_bytes();
                d.copy_from_slice(be.get(8 - n..).unwrap_or(&[]));
            } else {
                d.copy_from_slice(s);
            }
        }
    };
    let int = t.as_int();
    match t.kind() {
        // bool takes y/n, or a number that is 0 or 1 (libbpf's rules).
        Kind::Int if int.is_some_and(|i| i.is_bool()) => {
            let x = match v {
                "y" => 1,
                "n" => 0,
                _ => parse_u64(v)
                    .filter(|x| *x <= 1)
                    .ok_or_else(|| format!("value '{v}' is not a bool"))?,
            };
            put(out, x);
        }
        Kind::Int => {
            let signed = int.is_some_and(|i| i.is_signed());
            let x = match v {
                // A `char` holds the letter itself, as libbpf stores it.
                "y" | "n" | "m" if int.is_some_and(|i| i.is_char()) && out.len() == 1 => {
                    u64::from(v.as_bytes().first().copied().unwrap_or(0))
                }
                // An option that is `y` or not set reads as 1 or 0 in an
                // integer (libbpf refuses both; `# X is not set` is `n` here).
                "y" => 1,
                "n" => 0,
                _ => parse_u64(v).ok_or_else(|| format!("value '{v}' is not an integer"))?,
            };
            if !fits(x, out.len(), signed) {
                let sign = if signed { "signed" } else { "unsigned" };
                return Err(format!(
                    "value '{v}' does not fit in a {}-byte {sign} integer",
                    out.len()
                ));
            }
            put(out, x);
        }
        Kind::Enum => {
            let x = tri(v).ok_or_else(|| format!("value '{v}' is not a tristate"))?;
            put(out, x);
        }
        Kind::Array => {
            let s = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .ok_or_else(|| format!("value '{v}' is not a string"))?;
            let n = s.len().min(out.len().saturating_sub(1));
            if let (Some(d), Some(src)) = (out.get_mut(..n), s.as_bytes().get(..n)) {
                d.copy_from_slice(src);
            }
        }
        k => return Err(format!("type {k:?} cannot hold a kconfig value")),
    }
    Ok(())
}

/// `LINUX_*` values, as config-style text (`y`/`n`, numbers).
fn virtual_value(
    name: &str,
    release: &str,
    f: &crate::features::Features,
    syscall_wrapper: bool,
) -> Option<String> {
    let yn = |b: bool| if b { "y" } else { "n" }.to_owned();
    match name {
        "LINUX_KERNEL_VERSION" => Some(kernel_version(release).to_string()),
        "LINUX_HAS_BPF_COOKIE" => Some(yn(f.bpf_cookie)),
        "LINUX_HAS_SYSCALL_WRAPPER" => Some(yn(syscall_wrapper)),
        _ => None,
    }
}

/// The initial `.kconfig` map value.
pub(crate) fn fill(
    obj: &Object<'_>,
    size: u32,
    features: &crate::features::Features,
    syscall_wrapper: bool,
) -> Result<Vec<u8>, LoadError> {
    let mut data = vec![0u8; size as usize];
    let Some(btf) = obj.btf.as_ref() else {
        return Ok(data);
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut config = None;
    for x in &obj.externs {
        let ExternKind::Kconfig { offset, size } = x.kind else {
            continue;
        };
        let start = offset as usize;
        let Some(out) = data.get_mut(start..start.saturating_add(size as usize)) else {
            continue;
        };
        let var = btf.type_by_id(x.btf_id).map_err(LoadError::Object)?;
        let ty = var.type_id();
        let fail = |reason: String| LoadError::Kconfig {
            name: x.name.to_owned(),
            reason,
        };
        // Virtual values, as libbpf defines them; an unknown LINUX_* is an
        // error even when weak (libbpf's rule), anything else is a config
        // option.
        if let Some(v) = virtual_value(x.name, &release, features, syscall_wrapper) {
            encode(btf, ty, &v, out).map_err(fail)?;
            continue;
        }
        if x.name.starts_with("LINUX_") {
            return Err(fail(
                "unknown virtual extern (LINUX_KERNEL_VERSION, LINUX_HAS_SYSCALL_WRAPPER and LINUX_HAS_BPF_COOKIE are known)".into(),
            ));
        }
        let cfg = config.get_or_insert_with(|| read_config(&release).map(|t| parse_config(&t)));
        match cfg.as_ref().and_then(|c| c.get(x.name)) {
            Some(v) => encode(btf, ty, v, out).map_err(fail)?,
            None if x.weak => {}
            None if cfg.is_none() => {
                return Err(fail(format!(
                    "no kernel config found (/proc/config.gz, /boot/config-{release})"
                )));
            }
            None => return Err(fail("not in the kernel config and not __weak".into())),
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes `v` for an INT of `size` bytes and `encoding`.
    fn encode_int(size: u32, encoding: u8, v: &str) -> Result<Vec<u8>, String> {
        use ember_core::Endian;
        use ember_core::btf::encode::{Body, Encoder, TypeRecord};
        let mut e = Encoder::new(Endian::NATIVE);
        let name = e.add_str("t").unwrap();
        let bits = u8::try_from(size * 8).unwrap();
        let body = Body::Int {
            size,
            encoding,
            offset: 0,
            bits,
        };
        let id = e.add(&TypeRecord::named(name, body)).unwrap();
        let raw = e.finish().unwrap();
        let btf = Btf::parse(&raw).unwrap();
        let mut out = vec![0u8; size as usize];
        encode(&btf, id, v, &mut out).map(|()| out)
    }

    const SIGNED: u8 = 1;
    const CHAR: u8 = 2;
    const BOOL: u8 = 4;

    #[test]
    fn numbers_read_as_strtoull_base_0() {
        assert_eq!(parse_u64("250"), Some(250));
        assert_eq!(parse_u64("0x1000000"), Some(0x100_0000));
        assert_eq!(parse_u64("0XfF"), Some(255));
        assert_eq!(parse_u64("010"), Some(8));
        assert_eq!(parse_u64("0"), Some(0));
        assert_eq!(parse_u64("-1"), Some(u64::MAX));
        assert_eq!(parse_u64("+7"), Some(7));
        for bad in ["", "0x", "08", "1k", "--1", "18446744073709551616"] {
            assert_eq!(parse_u64(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_value_too_large_for_its_type_is_an_error_not_cut() {
        // CONFIG_NR_CPUS-like values into a u8: libbpf says ERANGE, and
        // so do we, where the value used to be cut to its low byte.
        let e = encode_int(1, 0, "8192").unwrap_err();
        assert!(
            e.contains("does not fit in a 1-byte unsigned integer"),
            "{e}"
        );
        assert_eq!(encode_int(1, 0, "255").unwrap(), [255]);
        assert!(encode_int(1, 0, "-1").is_err());
        assert!(encode_int(1, SIGNED, "128").is_err());
        assert_eq!(encode_int(1, SIGNED, "-128").unwrap(), [0x80]);
        assert_eq!(encode_int(1, SIGNED, "127").unwrap(), [127]);
        assert!(encode_int(2, SIGNED, "-32769").is_err());
        assert_eq!(
            encode_int(4, 0, "0xffffffff").unwrap(),
            u32::MAX.to_ne_bytes()
        );
        assert!(encode_int(4, 0, "0x100000000").is_err());
        assert_eq!(
            encode_int(8, 0, "0xdead000000000000").unwrap(),
            0xdead_0000_0000_0000u64.to_ne_bytes()
        );
        assert_eq!(encode_int(8, SIGNED, "-1").unwrap(), [0xff; 8]);
    }

    #[test]
    fn bools_take_y_n_0_and_1_chars_take_letters_and_numbers() {
        assert_eq!(encode_int(1, BOOL, "y").unwrap(), [1]);
        assert_eq!(encode_int(1, BOOL, "0").unwrap(), [0]);
        assert_eq!(encode_int(1, BOOL, "1").unwrap(), [1]);
        assert!(encode_int(1, BOOL, "2").is_err());
        assert!(encode_int(1, BOOL, "m").is_err());
        assert_eq!(encode_int(1, CHAR, "m").unwrap(), [b'm']);
        assert_eq!(encode_int(1, CHAR, "65").unwrap(), [65]);
        // Integers read a set or unset option as 1 or 0, and nothing else.
        assert_eq!(encode_int(4, 0, "y").unwrap(), 1u32.to_ne_bytes());
        assert_eq!(encode_int(4, 0, "n").unwrap(), 0u32.to_ne_bytes());
        assert!(encode_int(4, 0, "m").is_err());
    }

    #[test]
    fn config_lines() {
        let c = parse_config("CONFIG_HZ=250\n# CONFIG_FOO is not set\nCONFIG_S=\"x\"\n");
        assert_eq!(c.get("CONFIG_HZ").map(String::as_str), Some("250"));
        assert_eq!(c.get("CONFIG_FOO").map(String::as_str), Some("n"));
        assert_eq!(c.get("CONFIG_S").map(String::as_str), Some("\"x\""));
        let c = parse_config(
            "CONFIG_A=1\r\nCONFIG_A=2\n# NOT_CONFIG is not set\n# CONFIG_C=y is not set\nCONFIG_B=3\r\r",
        );
        assert_eq!(c.get("CONFIG_A").map(String::as_str), Some("1"));
        assert_eq!(c.get("CONFIG_B").map(String::as_str), Some("3"));
        assert_eq!(c.len(), 2);
    }
}
