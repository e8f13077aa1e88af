//! Values for `.kconfig` externs, by libbpf's rules: `LINUX_KERNEL_VERSION`
//! as libbpf computes it (Ubuntu's version signature, a Debian kernel's
//! `uname -v`, else the release), `LINUX_HAS_SYSCALL_WRAPPER` from
//! kallsyms (libbpf probes with a kprobe instead; ember's answer is the
//! kernel's, where kprobes are missing too), `LINUX_HAS_BPF_COOKIE` from
//! a probe, options from config text the caller gives
//! ([`EbpfLoader::kconfig`](crate::EbpfLoader::kconfig)), then
//! `/proc/config.gz` or `/boot/config-<release>`.

use std::collections::HashMap;

use ember_core::btf::{Btf, Kind, TypeId};
use ember_core::object::{ExternKind, Object};

use super::LoadError;

use ember_core::load::running_version_code;

/// The running kernel's version code, as libbpf computes it (Ubuntu's
/// version signature, a Debian kernel's `uname -v`, else the release).
pub(crate) fn running_kernel_version() -> u32 {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    version_code(release.trim())
}

/// [`running_kernel_version`] for a release already read.
fn version_code(release: &str) -> u32 {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let version = read("/proc/sys/kernel/version").unwrap_or_default();
    let signature = read("/proc/version_signature");
    running_version_code(release, version.trim(), signature.as_deref())
}

/// Parses kernel config text: `CONFIG_X=value` lines; others (comments,
/// `# CONFIG_X is not set` included: libbpf leaves such an option unset)
/// are ignored. Where an option is given twice the first wins, as in
/// libbpf, which stops looking once an extern is set; the text ends at a
/// NUL, as libbpf's C string does. Unlike libbpf, CRs at a line's end
/// are dropped from its value (text written on Windows), and a line is
/// read whole however long (libbpf reads 4,095-byte pieces).
///
/// # Errors
/// A `CONFIG_` line without `=` or without a value, as libbpf refuses the
/// whole config for one (named with its line number).
pub fn parse_config(text: &str) -> Result<HashMap<String, String>, String> {
    // libbpf takes the text as a C string: it ends at a NUL.
    let text = text.split('\0').next().unwrap_or_default();
    let mut m = HashMap::new();
    for (n, raw) in text.split('\n').enumerate() {
        if !raw.starts_with("CONFIG_") {
            continue;
        }
        let at = n.saturating_add(1);
        let (k, v) = raw
            .split_once('=')
            .ok_or_else(|| format!("config line {at} '{raw}': no separator"))?;
        // Empty before CRs are dropped: libbpf sees `\r` as a value.
        if v.is_empty() {
            return Err(format!("config line {at} '{raw}': no value"));
        }
        m.entry(k.to_owned())
            .or_insert_with(|| v.trim_end_matches('\r').to_owned());
    }
    Ok(m)
}

/// A kernel config is about 10,000 lines; this bounds what a corrupt or
/// hostile `/proc/config.gz` can make us allocate.
const CONFIG_LIMIT: usize = 16 << 20;

fn read_config(release: &str) -> Option<String> {
    const GZ: &str = "/proc/config.gz";
    // Either file may be gzipped or plain, as libbpf's gzopen reads both;
    // a stray non-UTF-8 byte (in a comment) does not lose the config.
    let text = |path: &str| -> Option<String> {
        let bytes = std::fs::read(path).ok()?;
        let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
            match crate::gzip::decompress(&bytes, CONFIG_LIMIT) {
                Ok(p) => p,
                Err(e) => {
                    log::warn!("{path}: {e}");
                    return None;
                }
            }
        } else {
            bytes
        };
        Some(String::from_utf8_lossy(&plain).into_owned())
    };
    text(GZ).or_else(|| text(&format!("/boot/config-{release}")))
}

/// A config number as C's `strtoull(v, .., 0)` reads it, as libbpf does:
/// leading blanks and a sign, then `0x` hex, a leading `0` octal, else
/// decimal; a `-` negates modulo 2^64. The whole text must be the number.
fn parse_u64(v: &str) -> Option<u64> {
    let v = v.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, digits) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let (radix, digits) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits.get(1..)?)
    } else {
        (10, digits)
    };
    // `from_str_radix` takes a leading sign, where strtoull has read its
    // one sign already and stops (`0x+5`, `+-1`).
    if !digits.starts_with(|c: char| c.is_digit(radix)) {
        return None;
    }
    let n = u64::from_str_radix(digits, radix).ok()?;
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

/// What a `.kconfig` extern's type is to libbpf (`find_kcfg_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kcfg {
    /// `_Bool` (a 1-byte BOOL int).
    Bool,
    /// Any other 1-byte int (`char`, `__u8`, ...): takes `y`/`n`/`m` as
    /// letters or a number.
    Char { signed: bool },
    /// A 2-, 4- or 8-byte int.
    Int { signed: bool },
    /// `enum libbpf_tristate`.
    Tristate,
    /// A non-empty array of [`Kcfg::Char`].
    CharArr,
}

fn classify(btf: &Btf<'_>, ty: TypeId) -> Result<Kcfg, String> {
    let unsupported = || {
        "type is unsupported (bool, char, integer, enum libbpf_tristate or char array)".to_owned()
    };
    let id = btf.skip_mods_and_typedefs(ty).map_err(|e| e.to_string())?;
    let t = btf.type_by_id(id).map_err(|e| e.to_string())?;
    match t.kind() {
        Kind::Int => {
            let int = t.as_int().ok_or_else(unsupported)?;
            let signed = int.is_signed();
            match t.size() {
                1 if int.is_bool() => Ok(Kcfg::Bool),
                _ if int.is_bool() => Err(unsupported()),
                1 => Ok(Kcfg::Char { signed }),
                2 | 4 | 8 => Ok(Kcfg::Int { signed }),
                _ => Err(unsupported()),
            }
        }
        Kind::Enum | Kind::Enum64 => {
            let named = btf.name(&t).is_ok_and(|n| n == "libbpf_tristate");
            let sized = t.kind() == Kind::Enum64 || t.size() == 4;
            if named && sized {
                Ok(Kcfg::Tristate)
            } else {
                Err(unsupported())
            }
        }
        Kind::Array => {
            let a = t.as_array().ok_or_else(unsupported)?;
            match classify(btf, a.elem_type)? {
                Kcfg::Char { .. } if a.nelems > 0 => Ok(Kcfg::CharArr),
                _ => Err(unsupported()),
            }
        }
        _ => Err(unsupported()),
    }
}

/// Writes the low `out.len()` bytes of `x` in the host's byte order.
fn put(out: &mut [u8], x: u64) {
    let n = out.len().min(8);
    let bytes = if cfg!(target_endian = "big") {
        x.to_be_bytes()
    } else {
        x.to_le_bytes()
    };
    // Big-endian hosts keep a value's low bytes at the end.
    let src = if cfg!(target_endian = "big") {
        bytes.get(8 - n..)
    } else {
        bytes.get(..n)
    };
    if let (Some(d), Some(s)) = (out.get_mut(..n), src) {
        d.copy_from_slice(s);
    }
}

/// `x` into `out` for an extern of kind `kind`, as libbpf's
/// `set_kcfg_value_num` (numeric config values and the `LINUX_*`
/// values): an int or char that can hold it, or a bool when it is 0 or
/// 1. Errors show the value as `shown` (the config text, or the number).
fn set_num(
    kind: Kcfg,
    x: u64,
    shown: &dyn core::fmt::Display,
    out: &mut [u8],
) -> Result<(), String> {
    let signed = match kind {
        Kcfg::Bool if x > 1 => return Err(format!("value '{shown}' isn't boolean compatible")),
        Kcfg::Bool => false,
        Kcfg::Char { signed } | Kcfg::Int { signed } => signed,
        Kcfg::Tristate | Kcfg::CharArr => {
            return Err(format!(
                "value '{shown}' implies integer, char, or boolean type"
            ));
        }
    };
    if !fits(x, out.len(), signed) {
        return Err(format!(
            "value '{shown}' doesn't fit in {} bytes",
            out.len()
        ));
    }
    put(out, x);
    Ok(())
}

/// Encodes one config value (text as in the config file) for a
/// `.kconfig` extern of BTF type `ty`, into `out` (the extern's bytes),
/// by libbpf's rules (`bpf_object__process_kconfig_line`): a value
/// starting with `y`, `n` or `m` sets a bool (not `m`), a tristate, or a
/// char (as the letter); a quoted string sets a char array, cut to leave
/// its NUL; anything else is a number as `strtoull(.., 0)` reads it, for
/// an int or char that can hold it.
///
/// # Errors
/// A type libbpf does not support for `.kconfig`, or a value the type
/// cannot hold, as text naming the value.
pub fn encode(btf: &Btf<'_>, ty: TypeId, v: &str, out: &mut [u8]) -> Result<(), String> {
    set_text(classify(btf, ty)?, v, out)
}

/// [`encode`] for an extern already classified as `kind`.
fn set_text(kind: Kcfg, v: &str, out: &mut [u8]) -> Result<(), String> {
    match v.as_bytes().first() {
        None => Err("no value".to_owned()),
        Some(&c @ (b'y' | b'n' | b'm')) => {
            let x = match (kind, c) {
                (Kcfg::Bool, b'm') => {
                    return Err(format!("value '{v}' implies tristate or char type"));
                }
                (Kcfg::Bool, _) => u64::from(c == b'y'),
                (Kcfg::Tristate, b'y') => 1,
                (Kcfg::Tristate, b'm') => 2,
                (Kcfg::Tristate, _) => 0,
                (Kcfg::Char { .. }, _) => u64::from(c),
                _ => return Err(format!("value '{v}' implies bool, tristate, or char type")),
            };
            // libbpf stores a tristate as `enum libbpf_tristate`: 4 bytes
            // at the start, even of an 8-byte enum64.
            let n = if kind == Kcfg::Tristate { 4 } else { out.len() };
            let len = n.min(out.len());
            put(out.get_mut(..len).unwrap_or_default(), x);
            Ok(())
        }
        Some(b'"') => {
            if kind != Kcfg::CharArr {
                return Err(format!("value '{v}' implies char array type"));
            }
            let s = v
                .get(1..)
                .and_then(|s| s.strip_suffix('"'))
                .ok_or_else(|| format!("invalid string config '{v}'"))?;
            let n = s.len().min(out.len().saturating_sub(1));
            if let (Some(d), Some(src)) = (out.get_mut(..n), s.as_bytes().get(..n)) {
                d.copy_from_slice(src);
            }
            if let Some(nul) = out.get_mut(n) {
                *nul = 0;
            }
            Ok(())
        }
        Some(_) => {
            let x = parse_u64(v).ok_or_else(|| format!("value '{v}' isn't a valid integer"))?;
            if !matches!(kind, Kcfg::Int { .. } | Kcfg::Char { .. }) {
                return Err(format!("value '{v}' implies integer type"));
            }
            set_num(kind, x, &v, out)
        }
    }
}

/// `LINUX_*` values, as numbers (libbpf sets them as numbers).
fn virtual_value(
    name: &str,
    f: &crate::features::Features,
    syscall_wrapper: bool,
    release: &str,
) -> Option<u64> {
    match name {
        "LINUX_KERNEL_VERSION" => Some(u64::from(version_code(release))),
        "LINUX_HAS_BPF_COOKIE" => Some(u64::from(f.bpf_cookie)),
        "LINUX_HAS_SYSCALL_WRAPPER" => Some(u64::from(syscall_wrapper)),
        _ => None,
    }
}

/// The initial `.kconfig` map value. Options are looked up in `extra`
/// (config text the caller gave, as libbpf's `kconfig` open option) and
/// then in the running kernel's config, read only if an extern is left.
pub(crate) fn fill(
    obj: &Object<'_>,
    size: u32,
    features: &crate::features::Features,
    syscall_wrapper: bool,
    extra: Option<&str>,
) -> Result<Vec<u8>, LoadError> {
    let mut data = vec![0u8; size as usize];
    let Some(btf) = obj.btf.as_ref() else {
        return Ok(data);
    };
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let extra = extra.map(parse_config);
    let mut config = None;
    let text_err = |name: &str, what: &str, e: &String| LoadError::Kconfig {
        name: name.to_owned(),
        reason: format!("{what}: {e}"),
    };
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
        // libbpf refuses an unsupported type even when weak and unset.
        let kind = classify(btf, ty).map_err(fail)?;
        // Virtual values, as libbpf defines them. libbpf's rules for the
        // rest: an unknown LINUX_* is 0 when weak, else an error; a name
        // with neither prefix is an error even when weak.
        if let Some(v) = virtual_value(x.name, features, syscall_wrapper, &release) {
            set_num(kind, v, &v, out).map_err(fail)?;
            continue;
        }
        if x.name.starts_with("LINUX_") {
            if x.weak {
                // Set as 0, so a type no number fits is still refused.
                set_num(kind, 0, &0, out).map_err(fail)?;
                continue;
            }
            return Err(fail(
                "unknown virtual extern (LINUX_KERNEL_VERSION, LINUX_HAS_SYSCALL_WRAPPER and LINUX_HAS_BPF_COOKIE are known)".into(),
            ));
        }
        if !x.name.starts_with("CONFIG_") {
            return Err(fail(
                "a .kconfig extern is named CONFIG_* (an option) or LINUX_* (a virtual value)"
                    .into(),
            ));
        }
        match &extra {
            Some(Err(e)) => return Err(text_err(x.name, "the given config text", e)),
            Some(Ok(c)) => {
                if let Some(v) = c.get(x.name) {
                    set_text(kind, v, out).map_err(fail)?;
                    continue;
                }
            }
            None => {}
        }
        let cfg = config.get_or_insert_with(|| read_config(&release).map(|t| parse_config(&t)));
        let cfg = match cfg {
            Some(Err(e)) => return Err(text_err(x.name, "the kernel config", e)),
            Some(Ok(c)) => Some(&*c),
            None => None,
        };
        match cfg.and_then(|c| c.get(x.name)) {
            Some(v) => set_text(kind, v, out).map_err(fail)?,
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
        assert_eq!(parse_u64(" 7"), Some(7));
        for bad in [
            "",
            "0x",
            "08",
            "1k",
            "--1",
            "+-1",
            "0x+5",
            "0+7",
            "-0x-1",
            "18446744073709551616",
        ] {
            assert_eq!(parse_u64(bad), None, "{bad}");
        }
    }

    // The expectations below are libbpf's; tests/tests/kconfig_oracle.rs
    // checks the same rules against the system's libbpf.
    #[test]
    fn a_value_too_large_for_its_type_is_an_error_not_cut() {
        let e = encode_int(2, 0, "70000").unwrap_err();
        assert!(e.contains("doesn't fit in 2 bytes"), "{e}");
        assert_eq!(encode_int(1, 0, "255").unwrap(), [255]);
        assert!(encode_int(1, 0, "256").is_err());
        assert!(encode_int(1, 0, "-1").is_err());
        assert!(encode_int(1, SIGNED, "128").is_err());
        assert_eq!(encode_int(1, SIGNED, "-128").unwrap(), [0x80]);
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
    fn letters_go_to_bools_tristates_and_chars_numbers_to_ints_and_chars() {
        assert_eq!(encode_int(1, BOOL, "y").unwrap(), [1]);
        assert_eq!(encode_int(1, BOOL, "n").unwrap(), [0]);
        assert!(encode_int(1, BOOL, "m").is_err());
        assert!(
            encode_int(1, BOOL, "1").is_err(),
            "a number implies an integer"
        );
        // Every 1-byte int is a char to libbpf: letters stay letters.
        assert_eq!(encode_int(1, SIGNED, "m").unwrap(), [b'm']);
        assert_eq!(encode_int(1, 0, "y").unwrap(), [b'y']);
        assert_eq!(encode_int(1, 0, "65").unwrap(), [65]);
        assert!(encode_int(4, 0, "y").is_err());
        assert!(encode_int(4, 0, "").is_err());
        assert!(
            encode_int(16, 0, "1").is_err(),
            "16-byte ints are unsupported"
        );
    }

    #[test]
    fn config_lines() {
        let c = parse_config("CONFIG_HZ=250\n# CONFIG_FOO is not set\nCONFIG_S=\"x\"\n").unwrap();
        assert_eq!(c.get("CONFIG_HZ").map(String::as_str), Some("250"));
        assert_eq!(c.get("CONFIG_FOO"), None, "not set is unset, as in libbpf");
        assert_eq!(c.get("CONFIG_S").map(String::as_str), Some("\"x\""));
        let c = parse_config("CONFIG_A=1\r\nCONFIG_A=2\nNOT_CONFIG=1\nCONFIG_B=3\r\r").unwrap();
        assert_eq!(c.get("CONFIG_A").map(String::as_str), Some("1"));
        assert_eq!(c.get("CONFIG_B").map(String::as_str), Some("3"));
        assert_eq!(c.len(), 2);
        // A value of CRs is a value (libbpf finds no extern and moves on),
        // and the text ends at a NUL.
        let c = parse_config("CONFIG_U=\r\nCONFIG_A=1\0\nCONFIG_B\n").unwrap();
        assert_eq!(c.get("CONFIG_U").map(String::as_str), Some(""));
        assert_eq!(c.get("CONFIG_A").map(String::as_str), Some("1"));
        let e = parse_config("# c\nCONFIG_A=1\nCONFIG_B\n").unwrap_err();
        assert_eq!(e, "config line 3 'CONFIG_B': no separator");
        let e = parse_config("CONFIG_A=\n").unwrap_err();
        assert_eq!(e, "config line 1 'CONFIG_A=': no value");
    }
}
