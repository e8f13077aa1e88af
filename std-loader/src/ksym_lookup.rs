//! Kernel symbol addresses without reading `/proc/kallsyms`: a tiny
//! `BPF_PROG_TYPE_SYSCALL` program calls `bpf_kallsyms_lookup_name` (5.16)
//! for every wanted name in one `BPF_PROG_TEST_RUN`, as libbpf's light
//! skeleton loader does. Formatting kallsyms costs the kernel tens of
//! milliseconds (122k lines); the lookup costs microseconds.
//!
//! Policy on duplicates: the helper returns the first match the kernel
//! finds and cannot see a name that appears twice, which the kallsyms scan
//! reports as ambiguous. The fast path trusts the kernel's first match, as
//! libbpf's light skeleton does; [`Source::Kallsyms`] (or
//! `EbpfLoader::kallsyms_scan(true)`) scans instead and refuses ambiguous
//! names. Where the helper is unavailable (an older kernel, no
//! privilege, `kptr_restrict`), the scan is used.

use ember_sys::{Errno, ProgLoad, TestRun};

use crate::kallsyms::{Kallsyms, Ksym, KsymError};

/// How symbol addresses are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// The helper where the kernel has it, else the scan.
    #[default]
    Auto,
    /// Always scan `/proc/kallsyms`.
    Kallsyms,
}

/// How the symbols were found, for the load's notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Used {
    /// `bpf_kallsyms_lookup_name`.
    Helper,
    /// `/proc/kallsyms`.
    Scan,
}

/// `BPF_FUNC_kallsyms_lookup_name`.
const HELPER: i32 = 179;
/// `BPF_PROG_TYPE_SYSCALL`.
const SYSCALL: u32 = 31;
/// `BPF_F_SLEEPABLE` (syscall programs must be).
const SLEEPABLE: u32 = 1 << 4;
/// The context the verifier lets a syscall program address (`U16_MAX`),
/// less what instruction offsets (`s16`) can reach.
const MAX_CTX: usize = i16::MAX as usize;

/// Finds `wanted` names: through the helper when `source` allows and the
/// kernel has it, else by scanning `/proc/kallsyms`.
///
/// # Errors
/// As [`Kallsyms::read`]: the outer error reads the file, the inner one
/// is the scan's verdict.
pub fn resolve(
    wanted: &[&str],
    source: Source,
) -> std::io::Result<(Result<Kallsyms, KsymError>, Used)> {
    if source == Source::Auto {
        if let Some(k) = through_helper(wanted) {
            return Ok((Ok(k), Used::Helper));
        }
    }
    Kallsyms::read(wanted).map(|r| (r, Used::Scan))
}

/// The longest name the program copies to its stack (a 256-byte area,
/// the result slot at its end).
const MAX_NAME: usize = 247;

/// The context: `[results: n × u64][status: n × u64]`, or `None` when a
/// name cannot be looked up this way.
fn layout(wanted: &[&str]) -> Option<Vec<u8>> {
    let ok = |w: &&str| !w.is_empty() && w.len() <= MAX_NAME && !w.contains('\0');
    let size = wanted.len().checked_mul(16)?;
    (wanted.iter().all(ok) && size <= MAX_CTX).then(|| vec![0u8; size])
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> [u8; 8] {
    let mut i = [0u8; 8];
    i[0] = code;
    i[1] = if cfg!(target_endian = "little") {
        (src << 4) | dst
    } else {
        (dst << 4) | src
    };
    i[2..4].copy_from_slice(&off.to_ne_bytes());
    i[4..].copy_from_slice(&imm.to_ne_bytes());
    i
}

/// `r6 = ctx`; per name: the name copied to the stack (the helper reads
/// only stack, map or packet memory, not the context), `r0 =
/// kallsyms_lookup_name(name, len, 0, &slot)`, status and slot stored in
/// the context; `return 0`.
fn program(wanted: &[&str]) -> Option<Vec<u8>> {
    const LD_IMM64: u8 = 0x18;
    const MOV64_REG: u8 = 0xbf;
    const MOV64_IMM: u8 = 0xb7;
    const ADD64_IMM: u8 = 0x07;
    const CALL: u8 = 0x85;
    const STX_DW: u8 = 0x7b;
    const LDX_DW: u8 = 0x79;
    const EXIT: u8 = 0x95;
    const NAME: i16 = -256;
    const SLOT: i16 = -8;
    let n = wanted.len();
    let mut p = Vec::new();
    p.extend(insn(MOV64_REG, 6, 1, 0, 0));
    for (i, w) in wanted.iter().enumerate() {
        let mut bytes = w.as_bytes().to_vec();
        bytes.push(0);
        let len = i32::try_from(bytes.len()).ok()?;
        bytes.resize(bytes.len().next_multiple_of(8), 0);
        for (k, chunk) in bytes.chunks_exact(8).enumerate() {
            let v = u64::from_ne_bytes(chunk.try_into().ok()?);
            let (lo, hi) = (v as u32 as i32, (v >> 32) as u32 as i32);
            p.extend(insn(LD_IMM64, 1, 0, 0, lo));
            p.extend(insn(0, 0, 0, 0, hi));
            p.extend(insn(STX_DW, 10, 1, NAME + i16::try_from(8 * k).ok()?, 0));
        }
        p.extend(insn(MOV64_REG, 1, 10, 0, 0));
        p.extend(insn(ADD64_IMM, 1, 0, 0, i32::from(NAME)));
        p.extend(insn(MOV64_IMM, 2, 0, 0, len));
        p.extend(insn(MOV64_IMM, 3, 0, 0, 0));
        p.extend(insn(MOV64_REG, 4, 10, 0, 0));
        p.extend(insn(ADD64_IMM, 4, 0, 0, i32::from(SLOT)));
        p.extend(insn(CALL, 0, 0, 0, HELPER));
        p.extend(insn(STX_DW, 6, 0, i16::try_from(8 * (n + i)).ok()?, 0));
        p.extend(insn(LDX_DW, 1, 10, SLOT, 0));
        p.extend(insn(STX_DW, 6, 1, i16::try_from(8 * i).ok()?, 0));
    }
    p.extend(insn(MOV64_IMM, 0, 0, 0, 0));
    p.extend(insn(EXIT, 0, 0, 0, 0));
    Some(p)
}

/// Every wanted name through the helper; `None` when the kernel cannot
/// answer them all (no helper, no privilege, a name it refuses), so the
/// caller scans instead.
fn through_helper(wanted: &[&str]) -> Option<Kallsyms> {
    if wanted.is_empty() {
        return Some(Kallsyms::default());
    }
    let mut ctx = layout(wanted)?;
    let insns = program(wanted)?;
    let prog = ember_sys::prog_load(&mut ProgLoad {
        prog_type: SYSCALL,
        prog_flags: SLEEPABLE,
        insns: &insns,
        license: c"GPL",
        name: "ember_ksyms",
        ..Default::default()
    })
    .ok()?;
    ember_sys::prog_test_run(
        ember_sys::AsFd::as_fd(&prog),
        &mut TestRun {
            ctx_in: Some(&mut ctx),
            ..Default::default()
        },
    )
    .ok()?;
    let n = wanted.len();
    let word = |i: usize| {
        ctx.get(8 * i..8 * i + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
    };
    let mut found = Vec::new();
    for (i, w) in wanted.iter().enumerate() {
        let status = word(n + i)? as i64;
        match status {
            0 => found.push((
                (*w).to_owned(),
                Ksym {
                    addr: word(i)?,
                    kind: '?',
                    module: None,
                },
            )),
            // Absent: the scan would not find it either.
            s if s == -i64::from(Errno::NOENT.raw_os_error()) => {}
            // EPERM (kptr_restrict, no CAP_PERFMON) or anything else: scan.
            _ => return None,
        }
    }
    Some(Kallsyms::from_found(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_program_shapes() {
        let ctx = layout(&["a", "bpf_prog_active"]).expect("layout");
        assert_eq!(ctx.len(), 32);
        let p = program(&["a", "bpf_prog_active"]).expect("program");
        // r6 = r1; per name 3 instructions per 8 name bytes and 10 more;
        // r0 = 0, exit.
        assert_eq!(p.len(), 8 * (1 + (3 + 10) + (3 * 2 + 10) + 2));
        assert!(layout(&[""]).is_none());
        assert!(layout(&["a\0b"]).is_none());
        assert!(layout(&[&"x".repeat(MAX_NAME + 1)]).is_none());
        assert!(layout(&[&"x".repeat(MAX_NAME)]).is_some());
    }
}
