//! Validated string-section lookups.

use crate::error::{Error, ErrorKind, Result};

/// Returns the NUL-terminated string starting at `local` in `strs` (a
/// string section whose last byte is NUL, checked at open).
#[inline]
pub(crate) fn cstr_at(strs: &[u8], local: usize) -> Option<&[u8]> {
    let tail = strs.get(local..)?;
    let end = tail.iter().position(|&b| b == 0)?;
    tail.get(..end)
}

/// Like [`cstr_at`], as UTF-8; `abs` is the caller's offset for errors.
#[inline]
pub(crate) fn str_at(strs: &[u8], local: usize, abs: u32, at: usize) -> Result<&str> {
    let b = cstr_at(strs, local).ok_or(Error::new(ErrorKind::BadStrOffset(abs), at))?;
    core::str::from_utf8(b).map_err(|_| Error::new(ErrorKind::InvalidUtf8(abs), at))
}

/// Length of the essential part of a CO-RE name: everything before the
/// last `___flavor` suffix (`x___y` where neither side of `___` is `_`).
pub fn essential_name_len(name: &[u8]) -> usize {
    // Most names have no `___`: one cheap scan rules a flavor out.
    let mut run = 0u8;
    let mut triple = false;
    for &b in name {
        run = if b == b'_' { run.saturating_add(1) } else { 0 };
        triple |= run >= 3;
    }
    if !triple {
        return name.len();
    }
    name.windows(5)
        .rposition(|w| matches!(*w, [a, b'_', b'_', b'_', e] if a != b'_' && e != b'_'))
        .map_or(name.len(), |i| i.saturating_add(1))
}

/// The essential part of a CO-RE name (`task_struct___v2` → `task_struct`).
pub fn essential_name(name: &str) -> &str {
    name.get(..essential_name_len(name.as_bytes()))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::essential_name;

    #[test]
    fn flavors() {
        assert_eq!(essential_name("task_struct___v2"), "task_struct");
        assert_eq!(essential_name("foo__bar"), "foo__bar");
        assert_eq!(essential_name("foo____x"), "foo____x");
        assert_eq!(essential_name("a___b___c"), "a___b");
        assert_eq!(essential_name("___x"), "___x");
        assert_eq!(essential_name("x___"), "x___");
        assert_eq!(essential_name(""), "");
    }
}
