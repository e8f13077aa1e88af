//! What `ember load` and `ember run` set on an object before loading it:
//! `--max-entries`, `--set`, `--no-autoload`, `--target`, `--kconfig`.

use std::path::PathBuf;

use crate::context;

/// What `ember load` sets on the object before loading it.
pub(crate) struct Settings {
    pub(crate) max_entries: Vec<String>,
    pub(crate) set: Vec<String>,
    pub(crate) no_autoload: Vec<String>,
    pub(crate) target: Vec<String>,
    /// `--kconfig FILE`.
    pub(crate) kconfig: Option<PathBuf>,
}

impl Settings {
    /// The `--kconfig` file's text, if one was given.
    pub(crate) fn kconfig_text(&self) -> Result<Option<String>, Box<dyn core::error::Error>> {
        self.kconfig
            .as_ref()
            .map(|p| std::fs::read_to_string(p).map_err(|e| context(p.display().to_string(), e)))
            .transpose()
    }
}

/// `NAME=VALUE`, split.
pub(crate) fn assignment<'s>(
    flag: &str,
    s: &'s str,
) -> Result<(&'s str, &'s str), Box<dyn core::error::Error>> {
    s.split_once('=')
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("{flag} {s}: expected NAME=VALUE").into())
}

/// A `--set` value as the variable's bytes: an integer of its size
/// (native byte order), or `hex:` bytes of exactly its size.
pub(crate) fn global_value(text: &str, size: usize) -> Result<Vec<u8>, String> {
    if let Some(hex) = text.strip_prefix("hex:") {
        let hex: String = hex.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        // Only ASCII hex digits: the pairs below are byte slices.
        if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(format!("hex:{hex}: '{c}' is not a hex digit"));
        }
        if !hex.len().is_multiple_of(2) || hex.len() / 2 != size {
            return Err(format!("hex:{hex} is not {size} bytes"));
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| format!("hex:{hex}: {e}"));
    }
    if !matches!(size, 1 | 2 | 4 | 8) {
        return Err(format!(
            "the variable is {size} bytes: give it as hex:BYTES, not an integer"
        ));
    }
    let (neg, digits) = match text.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, text),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(h) => u128::from_str_radix(h, 16),
        None => digits.parse::<u128>(),
    }
    .map_err(|e| format!("{text}: {e}"))?;
    let bits = size * 8;
    let fits = if neg {
        magnitude <= 1u128 << (bits - 1)
    } else {
        magnitude < 1u128 << bits
    };
    if !fits {
        return Err(format!("{text} does not fit in {size} bytes"));
    }
    let v = if neg {
        0u128.wrapping_sub(magnitude)
    } else {
        magnitude
    };
    let bytes = v.to_ne_bytes();
    Ok(if cfg!(target_endian = "little") {
        bytes[..size].to_vec()
    } else {
        bytes[16 - size..].to_vec()
    })
}

/// Applies `ember load`'s settings to the opened object.
pub(crate) fn configure(
    spec: &mut ember::ObjectSpec<'_>,
    s: &Settings,
) -> Result<(), Box<dyn core::error::Error>> {
    for a in &s.max_entries {
        let (map, n) = assignment("--max-entries", a)?;
        let n: u32 = n.parse().map_err(|e| format!("--max-entries {a}: {e}"))?;
        spec.map_mut(map)?.set_max_entries(n)?;
    }
    for a in &s.set {
        let (name, value) = assignment("--set", a)?;
        let size = spec.global_size(name)?;
        let bytes = global_value(value, size).map_err(|e| format!("--set {name}: {e}"))?;
        spec.set_global_bytes(name, &bytes)?;
    }
    for p in &s.no_autoload {
        spec.program_mut(p)?.set_autoload(false);
    }
    for a in &s.target {
        let (prog, to) = assignment("--target", a)?;
        let (pin, func) = to.split_once(':').unwrap_or((to, ""));
        let path = std::ffi::CString::new(pin).map_err(|_| format!("--target {a}: bad path"))?;
        let fd =
            ember::ember_sys::obj_get(&path).map_err(|e| context(format!("--target {pin}"), e))?;
        let target = ember::AttachTarget::program(&fd, func)
            .map_err(|e| context(format!("--target {pin}"), e))?;
        spec.program_mut(prog)?.set_attach_target(target);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::global_value;

    #[test]
    fn set_values_take_the_variable_size() {
        let ne = |v: u64, n: usize| {
            let b = v.to_ne_bytes();
            if cfg!(target_endian = "little") {
                b[..n].to_vec()
            } else {
                b[8 - n..].to_vec()
            }
        };
        assert_eq!(global_value("5", 4).unwrap(), ne(5, 4));
        assert_eq!(global_value("0xff", 1).unwrap(), vec![0xff]);
        assert_eq!(global_value("-1", 2).unwrap(), vec![0xff, 0xff]);
        assert_eq!(global_value("hex:01 02", 2).unwrap(), vec![1, 2]);
        assert!(global_value("256", 1).is_err());
        assert!(global_value("-129", 1).is_err());
        assert!(global_value("1", 3).is_err(), "odd sizes need hex:");
        assert!(global_value("hex:0102", 1).is_err());
        // Not hex: an error, never a slice through a multi-byte char.
        assert!(global_value("hex:a\u{e9}b", 2).is_err());
    }
}
