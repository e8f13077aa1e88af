//! Function symbols of an ELF binary as uprobe file offsets (libbpf's
//! `elf_find_func_offset`): a symbol's `st_value` is a virtual address;
//! the uprobe wants the offset in the file, which the `PT_LOAD` segment
//! containing the address gives (`st_value - p_vaddr + p_offset`).
//!
//! Parsing goes through `object` (bounds-checked), so a malformed file is
//! an `Err`, never a panic.

use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

/// A defined function symbol (`STT_FUNC` or `STT_GNU_IFUNC`, from
/// `.symtab` or `.dynsym`) and its file offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncSym {
    /// The name as stored (a static binary's `.symtab` may carry a
    /// version: `memcpy@@GLIBC_2.14`).
    pub name: String,
    /// Its offset in the file.
    pub offset: u64,
    /// `STB_GLOBAL` (a weak or local definition yields to a global one).
    pub global: bool,
}

/// Why a name did not resolve to one offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// No defined function of that name.
    NotFound,
    /// Several definitions at different offsets (`name@0x...` each).
    Ambiguous(Vec<String>),
    /// The file is not an ELF this can read.
    Malformed(String),
}

/// Every defined function symbol of `data` with its file offset, from
/// both symbol tables (one entry per distinct name and offset). Symbols
/// whose address lies in no `PT_LOAD` segment are left out.
///
/// # Errors
/// Why `data` is not a readable ELF file.
pub fn functions(data: &[u8]) -> Result<Vec<FuncSym>, String> {
    let file = object::File::parse(data).map_err(|e| format!("not a readable ELF file: {e}"))?;
    if file.format() != object::BinaryFormat::Elf {
        return Err("not an ELF file".into());
    }
    // (vaddr, memsz, offset) of each PT_LOAD.
    let loads: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let mut out: Vec<FuncSym> = Vec::new();
    for sym in file.symbols().chain(file.dynamic_symbols()) {
        if sym.kind() != SymbolKind::Text || sym.is_undefined() {
            continue;
        }
        let Ok(name) = sym.name() else { continue };
        if name.is_empty() {
            continue;
        }
        let Some(offset) = file_offset(&loads, sym.address()) else {
            continue;
        };
        if !out.iter().any(|f| f.offset == offset && f.name == name) {
            out.push(FuncSym {
                name: name.to_owned(),
                offset,
                global: sym.is_global() && !sym.is_weak(),
            });
        }
    }
    Ok(out)
}

/// The file offset of virtual address `addr`, through the `PT_LOAD`
/// segment (vaddr, memsz, offset) holding it.
pub fn file_offset(loads: &[(u64, u64, u64)], addr: u64) -> Option<u64> {
    loads.iter().find_map(|&(vaddr, memsz, off)| {
        let end = vaddr.checked_add(memsz)?;
        (vaddr <= addr && addr < end).then(|| (addr - vaddr).checked_add(off))?
    })
}

/// Whether symbol `stored` is the function the user named `wanted`: the
/// same name, or the same before a `@` version when `wanted` has none.
pub fn name_matches(stored: &str, wanted: &str) -> bool {
    stored == wanted || (!wanted.contains('@') && stored.split('@').next() == Some(wanted))
}

/// The one file offset of function `name` in `syms`.
///
/// # Errors
/// [`Lookup::NotFound`], or [`Lookup::Ambiguous`] when definitions of
/// that name sit at different offsets (a global one beats weak and local
/// ones, as the dynamic linker would pick it).
pub fn find(syms: &[FuncSym], name: &str) -> Result<u64, Lookup> {
    let mut hits: Vec<&FuncSym> = syms
        .iter()
        .filter(|s| name_matches(&s.name, name))
        .collect();
    if hits.iter().any(|s| s.global) {
        hits.retain(|s| s.global);
    }
    let mut offs: Vec<u64> = hits.iter().map(|s| s.offset).collect();
    ember_core::order::sort(&mut offs);
    offs.dedup();
    match offs.as_slice() {
        [] => Err(Lookup::NotFound),
        [one] => Ok(*one),
        _ => Err(Lookup::Ambiguous(
            hits.iter()
                .map(|s| format!("{}@{:#x}", s.name, s.offset))
                .collect(),
        )),
    }
}

/// The file offset of data symbol (`STT_OBJECT`) `name`, such as a USDT
/// semaphore (what a uprobe's `ref_ctr_offset` takes).
///
/// # Errors
/// [`Lookup::NotFound`], [`Lookup::Ambiguous`] for several definitions
/// at different offsets, [`Lookup::Malformed`].
pub fn data_offset(data: &[u8], name: &str) -> Result<u64, Lookup> {
    let file = object::File::parse(data).map_err(|e| Lookup::Malformed(e.to_string()))?;
    let loads: Vec<(u64, u64, u64)> = file
        .segments()
        .map(|s| (s.address(), s.size(), s.file_range().0))
        .collect();
    let syms: Vec<FuncSym> = file
        .symbols()
        .chain(file.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Data && !s.is_undefined())
        .filter(|s| s.name().is_ok_and(|n| name_matches(n, name)))
        .filter_map(|s| {
            Some(FuncSym {
                name: s.name().ok()?.to_owned(),
                offset: file_offset(&loads, s.address())?,
                global: s.is_global() && !s.is_weak(),
            })
        })
        .collect();
    find(&syms, name)
}

/// [`functions`] then [`find`].
///
/// # Errors
/// As [`find`], or [`Lookup::Malformed`].
pub fn find_func_offset(data: &[u8], name: &str) -> Result<u64, Lookup> {
    find(&functions(data).map_err(Lookup::Malformed)?, name)
}

/// Shell-style glob over a symbol name: `*` any run, `?` one character,
/// everything else literal (libbpf's `glob_match`).
pub fn glob(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with one backtrack point: linear in practice,
    // never recursive.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// The distinct functions of `syms` whose name matches `pattern`, by
/// offset (aliases at one offset are probed once), sorted by offset.
pub fn matching(syms: &[FuncSym], pattern: &str) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = syms
        .iter()
        .filter(|s| glob(pattern, &s.name))
        .map(|s| (s.offset, s.name.clone()))
        .collect();
    ember_core::order::sort(&mut out);
    out.dedup_by_key(|(o, _)| *o);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_go_through_the_load_segment() {
        let loads = [(0x1000, 0x500, 0x800), (0x4000, 0x100, 0x2000)];
        assert_eq!(file_offset(&loads, 0x1010), Some(0x810));
        assert_eq!(file_offset(&loads, 0x4000), Some(0x2000));
        assert_eq!(file_offset(&loads, 0x1500), None);
        assert_eq!(file_offset(&loads, 0), None);
        // Wrapping segments are no match, not an overflow.
        assert_eq!(file_offset(&[(u64::MAX, 10, u64::MAX)], u64::MAX), None);
        assert_eq!(file_offset(&[(0, u64::MAX, u64::MAX)], 5), None);
    }

    #[test]
    fn malformed_elf_is_an_error() {
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!functions(&this).unwrap().is_empty());
        for bad in [
            &b""[..],
            b"\x7fELF",
            b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0garbage",
            &[0xff; 64],
        ] {
            assert!(functions(bad).is_err(), "{bad:?}");
        }
        // Every truncation and a sweep of byte flips over the headers of a
        // real ELF: errors or fewer symbols, never a panic.
        for len in (0..4096).chain([this.len() / 2, this.len() - 1]) {
            let _ = functions(this.get(..len).unwrap_or_default());
        }
        let mut m = this.clone();
        for i in (0..64).chain((0..16).map(|k| 0x40 + k * 29)) {
            if i < m.len() {
                m[i] ^= 0xa5;
                let _ = functions(&m);
                m[i] ^= 0xa5;
            }
        }
        // Section header table pointed at the end of the file.
        let mut m = this.clone();
        m[0x28..0x30].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        let _ = functions(&m);
    }

    #[test]
    fn lookup_prefers_globals_and_names_the_ambiguous() {
        let s = |n: &str, o, g| FuncSym {
            name: n.into(),
            offset: o,
            global: g,
        };
        let syms = [
            s("f", 0x10, true),
            s("f", 0x20, false),
            s("g", 0x30, false),
            s("g", 0x40, false),
            s("memcpy@@GLIBC_2.14", 0x50, true),
        ];
        assert_eq!(find(&syms, "f"), Ok(0x10));
        assert_eq!(find(&syms, "h"), Err(Lookup::NotFound));
        assert_eq!(
            find(&syms, "g"),
            Err(Lookup::Ambiguous(vec!["g@0x30".into(), "g@0x40".into()]))
        );
        assert_eq!(find(&syms, "memcpy"), Ok(0x50));
        assert_eq!(find(&syms, "memcpy@@GLIBC_2.14"), Ok(0x50));
        assert_eq!(find(&syms, "memcpy@GLIBC_2.2.5"), Err(Lookup::NotFound));
    }

    #[test]
    fn globs() {
        assert!(glob("ember_*", "ember_a"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*b*", "abc"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b", "aXbY"));
        assert!(!glob("", "a"));
        assert!(glob("exact", "exact"));
        // Pathological patterns stay fast (no exponential backtracking).
        let long = "a".repeat(2000);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
    }
}
