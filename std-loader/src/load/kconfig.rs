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

/// Parses kernel config text: `CONFIG_X=value` and `# CONFIG_X is not set`.
pub(crate) fn parse_config(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some(name) = rest.strip_suffix(" is not set") {
                m.insert(name.to_owned(), "n".to_owned());
            }
        } else if let Some((k, v)) = line.split_once('=') {
            if k.starts_with("CONFIG_") {
                m.insert(k.to_owned(), v.to_owned());
            }
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

/// Encodes one config value for the extern's BTF type.
fn encode(btf: &Btf<'_>, ty: TypeId, v: &str, out: &mut [u8]) -> Result<(), String> {
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
    match t.kind() {
        Kind::Int if t.as_int().is_some_and(|i| i.is_bool()) => match v {
            "y" => put(out, 1),
            "n" => put(out, 0),
            _ => return Err(format!("value '{v}' is not a bool")),
        },
        Kind::Int if t.as_int().is_some_and(|i| i.is_char()) && t.size() == 1 => {
            let c = match v {
                "y" | "n" | "m" => v.as_bytes().first().copied().unwrap_or(0),
                _ => return Err(format!("value '{v}' is not a tristate")),
            };
            put(out, u64::from(c));
        }
        Kind::Enum => {
            let x = tri(v).ok_or_else(|| format!("value '{v}' is not a tristate"))?;
            put(out, x);
        }
        Kind::Int => {
            let x = if let Some(h) = v.strip_prefix("0x") {
                u64::from_str_radix(h, 16)
            } else if let Some(n) = v.strip_prefix('-') {
                n.parse::<u64>().map(|n| n.wrapping_neg())
            } else {
                v.parse::<u64>()
            };
            let x = x
                .ok()
                .or_else(|| tri(v).filter(|_| v == "y" || v == "n"))
                .ok_or_else(|| format!("value '{v}' is not an integer"))?;
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

    #[test]
    fn config_lines() {
        let c = parse_config("CONFIG_HZ=250\n# CONFIG_FOO is not set\nCONFIG_S=\"x\"\n");
        assert_eq!(c.get("CONFIG_HZ").map(String::as_str), Some("250"));
        assert_eq!(c.get("CONFIG_FOO").map(String::as_str), Some("n"));
        assert_eq!(c.get("CONFIG_S").map(String::as_str), Some("\"x\""));
    }
}
