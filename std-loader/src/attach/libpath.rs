//! Where a uprobe's binary is: a path as given, a shared library by name
//! (`libc.so.6`, or `c` for `libc.so.*`) found in the target process's
//! `/proc/PID/maps`, then in `/etc/ld.so.cache`, then in the standard
//! library directories, or an executable by name on `$PATH`.
//!
//! `/etc/ld.so.cache` is read in glibc's format `glibc-ld.so.cache1.1`
//! (alone, or after the old `ld.so-1.7.0` table), each entry a soname
//! (`key`) and a path (`value`), strings addressed from the new header.

use std::path::{Path, PathBuf};

/// `glibc-ld.so.cache` + version `1.1`.
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// The old format's magic, which glibc < 2.32 wrote before the new table.
const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
/// Size of `struct cache_file_new` before its entries.
const NEW_HEADER: usize = 48;
/// Size of `struct file_entry_new`.
const NEW_ENTRY: usize = 24;
/// Size of `struct file_entry` (old format).
const OLD_ENTRY: usize = 12;
/// `FLAG_ELF_LIBC6`, in `flags & FLAG_TYPE_MASK`.
const FLAG_ELF_LIBC6: u32 = 0x0003;
/// `FLAG_TYPE_MASK`.
const FLAG_TYPE_MASK: u32 = 0x00ff;
/// `FLAG_REQUIRED_MASK`: the architecture bits.
const FLAG_REQUIRED_MASK: u32 = 0xff00;

/// The architecture bits of this build's libraries (`FLAG_X8664_LIB64`,
/// `FLAG_AARCH64_LIB64`); `None` accepts any.
const ARCH_FLAG: Option<u32> = if cfg!(target_arch = "x86_64") {
    Some(0x0300)
} else if cfg!(target_arch = "aarch64") {
    Some(0x0a00)
} else {
    None
};

/// One `/etc/ld.so.cache` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheEntry<'a> {
    /// `flags` (type and architecture).
    pub flags: u32,
    /// The soname (`libc.so.6`).
    pub key: &'a str,
    /// The file (`/lib/x86_64-linux-gnu/libc.so.6`).
    pub value: &'a str,
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes(s.try_into().ok()?))
}

fn cstr_at(b: &[u8], off: usize) -> Option<&str> {
    let s = b.get(off..)?;
    let end = s.iter().position(|&c| c == 0)?;
    core::str::from_utf8(s.get(..end)?).ok()
}

/// Parses `/etc/ld.so.cache`.
///
/// # Errors
/// Why the bytes are no cache in the new format (bad magic, a table
/// running past the end). Entries whose strings are out of bounds or not
/// UTF-8 are skipped.
pub fn parse_ld_so_cache(data: &[u8]) -> Result<Vec<CacheEntry<'_>>, String> {
    let mut start = 0usize;
    if data.starts_with(OLD_MAGIC) {
        // magic[11], then u32 nlibs at 12 (aligned), then 12-byte entries;
        // the new table follows, aligned to 8.
        let n = u32_at(data, 12).ok_or("truncated old header")?;
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(OLD_ENTRY))
            .and_then(|l| l.checked_add(16))
            .filter(|&l| l <= data.len())
            .ok_or("old table runs past the end")?;
        start = len
            .checked_next_multiple_of(8)
            .ok_or("old table too long")?;
    }
    let cache = data.get(start..).ok_or("no new-format table")?;
    if !cache.starts_with(NEW_MAGIC) {
        return Err("not a glibc-ld.so.cache1.1 file".into());
    }
    let nlibs = u32_at(cache, 20).ok_or("truncated header")?;
    let n = usize::try_from(nlibs).map_err(|_| "too many entries")?;
    let table = n
        .checked_mul(NEW_ENTRY)
        .and_then(|l| l.checked_add(NEW_HEADER))
        .filter(|&end| end <= cache.len())
        .ok_or("entry table runs past the end")?;
    let mut out = Vec::with_capacity(n);
    for off in (NEW_HEADER..table).step_by(NEW_ENTRY) {
        let (Some(flags), Some(k), Some(v)) = (
            u32_at(cache, off),
            u32_at(cache, off + 4),
            u32_at(cache, off + 8),
        ) else {
            continue;
        };
        let at = |o: u32| usize::try_from(o).ok().and_then(|o| cstr_at(cache, o));
        if let (Some(key), Some(value)) = (at(k), at(v)) {
            out.push(CacheEntry { flags, key, value });
        }
    }
    Ok(out)
}

/// Whether library file name `base` is what the user named `name`:
/// `libc.so.6` exactly (or a versioned `libc.so.6.x`), `libc.so` as
/// `libc.so.*`, and a short name `c` as `libc.so*` or `libc-2.31.so`.
pub fn lib_matches(base: &str, name: &str) -> bool {
    let versioned = |stem: &str| {
        base == stem
            || base
                .strip_prefix(stem)
                .is_some_and(|r| r.starts_with('.') && r.len() > 1)
    };
    if name.contains(".so") {
        return versioned(name);
    }
    let stem = format!("lib{name}.so");
    versioned(&stem)
        || base
            .strip_prefix(&format!("lib{name}-"))
            .is_some_and(|r| r.ends_with(".so"))
}

/// Whether `name` names a library rather than a path or an executable.
fn is_library_name(name: &str) -> bool {
    !name.contains('/') && name.contains(".so")
}

/// The mapped file of `maps` (a `/proc/PID/maps` text) that is library
/// `name`.
pub fn from_maps(maps: &str, name: &str) -> Option<PathBuf> {
    maps.lines().find_map(|l| {
        let path = l.get(l.find('/')?..)?;
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        let base = Path::new(path).file_name()?.to_str()?;
        lib_matches(base, name).then(|| PathBuf::from(path))
    })
}

/// The cached library `name` for this architecture.
pub fn from_cache(entries: &[CacheEntry<'_>], name: &str) -> Option<PathBuf> {
    entries
        .iter()
        .filter(|e| e.flags & FLAG_TYPE_MASK == FLAG_ELF_LIBC6)
        .filter(|e| ARCH_FLAG.is_none_or(|a| e.flags & FLAG_REQUIRED_MASK == a))
        .find(|e| lib_matches(e.key, name))
        .map(|e| PathBuf::from(e.value))
}

/// The directories searched last, as the dynamic linker's defaults.
fn std_dirs() -> Vec<PathBuf> {
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
        .iter()
        .flat_map(|d| [PathBuf::from(d).join(&triple), PathBuf::from(d)])
        .collect()
}

/// Whether `p` is an ELF file (not `libc.so`'s linker script).
fn is_elf(p: &Path) -> bool {
    use std::io::Read;
    let mut m = [0u8; 4];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut m))
        .is_ok()
        && &m == b"\x7fELF"
}

fn from_dirs(name: &str) -> Option<PathBuf> {
    for d in std_dirs() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut hits: Vec<PathBuf> = rd
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|b| lib_matches(b, name)))
            .map(|e| e.path())
            .filter(|p| is_elf(p))
            .collect();
        ember_core::order::sort(&mut hits);
        if let Some(p) = hits.into_iter().next() {
            return Some(p);
        }
    }
    None
}

fn from_path_env(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Resolves the binary of a uprobe: a path (containing `/`) as given; a
/// library name through `/proc/PID/maps` (with a pid), the cache and the
/// standard directories; a bare word as a library (`c`) and then as an
/// executable on `$PATH`.
///
/// # Errors
/// What was searched, when nothing was found.
pub fn resolve(binary: &str, pid: Option<u32>) -> Result<PathBuf, String> {
    if binary.is_empty() {
        return Err("an empty binary name".into());
    }
    if binary.contains('/') {
        let p = PathBuf::from(binary);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!("binary '{binary}'"))
        };
    }
    if let Some(pid) = pid {
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            if let Some(p) = from_maps(&maps, binary) {
                return Ok(p);
            }
        }
    }
    let cache = std::fs::read("/etc/ld.so.cache").unwrap_or_default();
    if let Ok(entries) = parse_ld_so_cache(&cache) {
        if let Some(p) = from_cache(&entries, binary).filter(|p| p.exists()) {
            return Ok(p);
        }
    }
    if let Some(p) = from_dirs(binary) {
        return Ok(p);
    }
    if !is_library_name(binary) {
        if let Some(p) = from_path_env(binary) {
            return Ok(p);
        }
    }
    Err(format!(
        "binary or library '{binary}' (searched{} /etc/ld.so.cache, the standard library \
         directories{})",
        pid.map(|p| format!(" /proc/{p}/maps,")).unwrap_or_default(),
        if is_library_name(binary) {
            ""
        } else {
            " and $PATH"
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(u32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = NEW_HEADER + entries.len() * NEW_ENTRY;
        let mut offs = Vec::new();
        for (_, k, v) in entries {
            let ko = base + strings.len();
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = base + strings.len();
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            offs.push((ko as u32, vo as u32));
        }
        let mut b = NEW_MAGIC.to_vec();
        b.extend_from_slice(&(entries.len() as u32).to_ne_bytes());
        b.extend_from_slice(&(strings.len() as u32).to_ne_bytes());
        b.resize(NEW_HEADER, 0);
        for ((f, _, _), (k, v)) in entries.iter().zip(offs) {
            b.extend_from_slice(&f.to_ne_bytes());
            b.extend_from_slice(&k.to_ne_bytes());
            b.extend_from_slice(&v.to_ne_bytes());
            b.extend_from_slice(&[0; 12]);
        }
        b.extend_from_slice(&strings);
        b
    }

    #[test]
    fn cache_entries_and_lookup() {
        let arch = ARCH_FLAG.unwrap_or(0);
        let b = cache(&[
            (0x0003, "libc.so.6", "/lib32/libc.so.6"),
            (
                0x0003 | arch,
                "libc.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6",
            ),
            (0x0003 | arch, "libcrypt.so.1", "/lib/libcrypt.so.1"),
        ]);
        let e = parse_ld_so_cache(&b).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].key, "libcrypt.so.1");
        let want = if ARCH_FLAG.is_some() {
            "/lib/x86_64-linux-gnu/libc.so.6"
        } else {
            "/lib32/libc.so.6"
        };
        assert_eq!(from_cache(&e, "libc.so.6"), Some(PathBuf::from(want)));
        assert_eq!(from_cache(&e, "c"), Some(PathBuf::from(want)));
        assert_eq!(
            from_cache(&e, "crypt"),
            Some(PathBuf::from("/lib/libcrypt.so.1"))
        );
        assert_eq!(from_cache(&e, "libz.so.1"), None);
        // After an old-format table.
        let mut old = OLD_MAGIC.to_vec();
        old.push(0);
        old.extend_from_slice(&2u32.to_ne_bytes());
        old.extend_from_slice(&[0; 24]);
        old.resize(old.len().next_multiple_of(8), 0);
        old.extend_from_slice(&b);
        assert_eq!(parse_ld_so_cache(&old).unwrap(), e);
    }

    #[test]
    fn the_real_cache_parses() {
        if let Ok(b) = std::fs::read("/etc/ld.so.cache") {
            let e = parse_ld_so_cache(&b).unwrap();
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn garbage_caches_are_errors_not_panics() {
        let good = cache(&[(0x0303, "libc.so.6", "/x")]);
        assert!(parse_ld_so_cache(b"").is_err());
        assert!(parse_ld_so_cache(b"glibc-ld.so.cache1.0").is_err());
        assert!(parse_ld_so_cache(NEW_MAGIC).is_err());
        assert!(parse_ld_so_cache(b"ld.so-1.7.0").is_err());
        let mut huge = good.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_ld_so_cache(&huge).is_err());
        let mut old = OLD_MAGIC.to_vec();
        old.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(parse_ld_so_cache(&old).is_err());
        // String offsets out of bounds or unterminated: the entry is
        // skipped.
        let mut bad = good.clone();
        bad[NEW_HEADER + 4..NEW_HEADER + 8].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_ld_so_cache(&bad).unwrap(), vec![]);
        let cut = &good[..good.len() - 1];
        assert!(parse_ld_so_cache(cut).unwrap().is_empty());
        // Every truncation and every single-byte change.
        for len in 0..good.len() {
            let _ = parse_ld_so_cache(&good[..len]);
        }
        for i in 0..good.len() {
            let mut m = good.clone();
            m[i] ^= 0xff;
            let _ = parse_ld_so_cache(&m);
        }
    }

    #[test]
    fn library_names() {
        assert!(lib_matches("libc.so.6", "libc.so.6"));
        assert!(lib_matches("libc.so.6", "c"));
        assert!(lib_matches("libc.so.6", "libc.so"));
        assert!(lib_matches("libc-2.31.so", "c"));
        assert!(!lib_matches("libcrypt.so.1", "c"));
        assert!(!lib_matches("libc.so.6", "libc.so.7"));
        assert!(!lib_matches("libc.so.", "libc.so"));
        let maps = "7f00-7f10 r-xp 00000000 08:01 123    /usr/lib/x86_64-linux-gnu/libc.so.6\n\
                    7f20-7f30 r--p 00000000 00:00 0 [heap]\n\
                    7f40-7f50 r-xp 00000000 08:01 9  /opt/my dir/libz.so.1 (deleted)\n";
        assert_eq!(
            from_maps(maps, "c"),
            Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/libc.so.6"))
        );
        assert_eq!(
            from_maps(maps, "libz.so.1"),
            Some(PathBuf::from("/opt/my dir/libz.so.1"))
        );
        assert_eq!(from_maps(maps, "m"), None);
        assert_eq!(from_maps("garbage\n/\n", "c"), None);
    }

    #[test]
    fn resolve_finds_libc_and_names_what_is_missing() {
        let libc = resolve("libc.so.6", None).unwrap();
        assert!(is_elf(&libc), "{}", libc.display());
        let pid = std::process::id();
        assert!(is_elf(&resolve("c", Some(pid)).unwrap()));
        assert!(resolve("sh", None).unwrap().is_file());
        let e = resolve("libember_nope.so.9", None).unwrap_err();
        assert!(e.contains("libember_nope.so.9"), "{e}");
        let e = resolve("/nonexistent/ember", None).unwrap_err();
        assert!(e.contains("/nonexistent/ember"), "{e}");
    }
}
