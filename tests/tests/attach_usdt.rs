//! USDT on this kernel, as root: a SystemTap SDT note emitted into this
//! test binary (with a semaphore) is found by provider and name, its
//! argument locations are described in `__bpf_usdt_specs`, and the
//! fixture's program, finding the spec through its attach cookie, reads
//! both arguments (a register and a negative constant) and the USDT
//! cookie at every firing. The semaphore counts while attached; dropping
//! the link stops the counts and frees the specs (a second round reuses
//! them); `attach_to` takes `binary:provider:name`; a program that reads
//! no specs, a bare section and a missing probe are errors; nothing is
//! left behind.
#![cfg(target_arch = "x86_64")]

use core::sync::atomic::{AtomicU16, Ordering};

use ember::attach::AttachErrorKind;
use ember::attach::usdt::UsdtTarget;
use ember::{AttachOpts, Ebpf, EbpfLoader};
use ember_tests::{fixture, kernel_ready, open_fds, serial};

const USDT: u32 = 7;
const USDT_ARG0_SUM: u32 = 8;
const USDT_ARG1: u32 = 9;
const USDT_COOKIE: u32 = 10;

/// The probe's semaphore, in `.data` (file-backed, as the kernel needs).
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data")]
pub static EMBER_USDT_SEMAPHORE: AtomicU16 = AtomicU16::new(0);

/// Fires USDT probe `ember:fire` with arguments `x` (a register) and -7
/// (a 4-byte signed constant), as `DTRACE_PROBE2` from `sys/sdt.h` would
/// lay out its note.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn ember_usdt_fire(x: u64) {
    // SAFETY: the instruction is a `nop` (no memory, stack or flags
    // effect, as the options say); everything else is data in
    // sections that are not loaded (.note.stapsdt) or one byte
    // (.stapsdt.base) that nothing reads.
    unsafe {
        core::arch::asm!(
            "990: nop",
            ".pushsection .note.stapsdt,\"\",@note",
            ".balign 4",
            ".4byte 992f-991f, 994f-993f, 3",
            "991: .asciz \"stapsdt\"",
            "992: .balign 4",
            "993: .8byte 990b",
            ".8byte _.stapsdt.base",
            ".8byte {sema}",
            ".asciz \"ember\"",
            ".asciz \"fire\"",
            ".asciz \"8@{x} -4@$-7\"",
            "994: .balign 4",
            ".popsection",
            ".ifndef _.stapsdt.base",
            ".pushsection .stapsdt.base,\"aG\",@progbits,.stapsdt.base,comdat",
            ".weak _.stapsdt.base",
            ".hidden _.stapsdt.base",
            "_.stapsdt.base: .space 1",
            ".size _.stapsdt.base, 1",
            ".popsection",
            ".endif",
            x = in(reg) x,
            sema = sym EMBER_USDT_SEMAPHORE,
            options(att_syntax, nomem, nostack, preserves_flags),
        );
    }
}

fn count(ebpf: &Ebpf, slot: u32) -> u64 {
    let v = ebpf
        .map("hits")
        .expect("hits")
        .lookup(&slot.to_ne_bytes())
        .expect("lookup")
        .expect("array slot");
    u64::from_ne_bytes(v[..8].try_into().expect("8 bytes"))
}

fn fire(from: u64, to: u64) {
    let f = core::hint::black_box(ember_usdt_fire as extern "C" fn(u64));
    for i in from..=to {
        f(core::hint::black_box(i));
    }
}

#[test]
fn usdt_probe_reads_its_arguments_through_the_spec() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let fds = open_fds();
    {
        let ebpf = EbpfLoader::new()
            .load_file(fixture("attach/uprobe.bpf-el.o"))
            .expect("load attach/uprobe");
        let exe = std::env::current_exe().expect("current_exe");
        let t = UsdtTarget {
            binary: exe.to_str().expect("UTF-8").to_owned(),
            provider: "ember".into(),
            name: "fire".into(),
            pid: None,
            usdt_cookie: 0x5eed,
        };
        for round in 0..2 {
            assert_eq!(EMBER_USDT_SEMAPHORE.load(Ordering::SeqCst), 0);
            let link = ebpf
                .attach_usdt("on_usdt", &t, AttachOpts::default())
                .expect("attach usdt");
            assert_eq!(
                EMBER_USDT_SEMAPHORE.load(Ordering::SeqCst),
                1,
                "the semaphore counts the attached probe"
            );
            let (n, sum) = (count(&ebpf, USDT), count(&ebpf, USDT_ARG0_SUM));
            fire(1, 10);
            assert_eq!(count(&ebpf, USDT) - n, 10, "round {round}: firings");
            assert_eq!(count(&ebpf, USDT_ARG0_SUM) - sum, 55, "arg 0 summed");
            assert_eq!(
                count(&ebpf, USDT_ARG1),
                (-7i64) as u64,
                "arg 1 sign-extended"
            );
            assert_eq!(count(&ebpf, USDT_COOKIE), 0x5eed, "usdt cookie");
            drop(link);
            assert_eq!(EMBER_USDT_SEMAPHORE.load(Ordering::SeqCst), 0);
            let after = count(&ebpf, USDT);
            fire(1, 10);
            assert_eq!(count(&ebpf, USDT), after, "counts after drop");
        }

        // As text, through the program, and a bare section names none.
        let p = ebpf.program("on_usdt").expect("program");
        let link = p
            .attach_to(&format!("{}:ember:fire", t.binary), AttachOpts::default())
            .expect("attach_to");
        assert_eq!(link.target(), format!("usdt '{}:ember:fire'", t.binary));
        let n = count(&ebpf, USDT);
        fire(1, 3);
        assert_eq!(count(&ebpf, USDT) - n, 3);
        assert_eq!(count(&ebpf, USDT_COOKIE), 0, "no usdt cookie given");
        drop(link);
        let e = p.attach().unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NoTarget), "{e}");
        // A program that reads no specs has no map to describe them in.
        let e = ebpf
            .program("on_entry")
            .expect("program")
            .attach_usdt(&t, AttachOpts::default())
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
        assert!(e.to_string().contains("__bpf_usdt_specs"), "{e}");

        let e = ebpf
            .attach_usdt(
                "on_usdt",
                &UsdtTarget {
                    name: "nope".into(),
                    ..t.clone()
                },
                AttachOpts::default(),
            )
            .unwrap_err();
        assert!(matches!(e.kind, AttachErrorKind::NotFound(_)), "{e}");
        assert!(e.to_string().contains("ember:nope"), "{e}");
    }
    assert_eq!(open_fds(), fds, "fds leaked");
}
