//! `.kconfig` values against libbpf (`tests/oracle/libbpf_kconfig.c`): the
//! same config text given to both (`EbpfLoader::kconfig`, libbpf's
//! `kconfig` open option), for each extern of `kconfig_types.bpf.c` (one
//! of every type libbpf supports) and each of a list of values, gives the
//! same `.kconfig` map bytes, or both refuse the load; ember's refusal
//! names the extern and the value.

use std::path::{Path, PathBuf};
use std::process::Command;

use ember::{EbpfLoader, LoadError};
use ember_tests::{build_oracle, ember_bin, fixture, kernel_ready, serial};

const EXTERNS: [&str; 11] = [
    "BOOL", "CHAR", "U8", "S16", "U16", "S32", "U32", "S64", "U64", "TRI", "STR",
];

/// Letters, numbers at each type's edges, the forms `strtoull(.., 0)`
/// reads, strings that fit and that are cut, and text that is none of
/// these. (A lone `"` is left out: libbpf reads past it.)
const VALUES: [&str; 42] = [
    "y",
    "n",
    "m",
    "yes",
    "0",
    "1",
    "2",
    "127",
    "128",
    "255",
    "256",
    "-1",
    "-128",
    "-129",
    "32767",
    "32768",
    "65535",
    "65536",
    "-32769",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "0x10",
    "0x+5",
    "0+7",
    "0XfF",
    "010",
    "08",
    " 5",
    "+5",
    "1k",
    "",
    "\"\"",
    "\"abc\"",
    "\"abcdefgh\"",
    "\"unterminated",
    "abc",
    "x",
];

fn tmp() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kconfig_oracle");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// libbpf's `.kconfig` bytes as hex, or `None` when it refused the load.
fn libbpf(oracle: &Path, obj: &Path, config: &str, dir: &Path) -> Option<String> {
    let file = dir.join("config");
    std::fs::write(&file, config).unwrap();
    let out = Command::new(oracle)
        .arg(obj)
        .arg(&file)
        .output()
        .expect("oracle");
    match out.status.code() {
        Some(0) => Some(String::from_utf8(out.stdout).unwrap().trim().to_owned()),
        Some(3) => None,
        c => panic!(
            "oracle exit {c:?} for {config:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// ember's `.kconfig` bytes as hex, or the error.
fn ember(obj: &Path, config: &str) -> Result<String, LoadError> {
    let e = EbpfLoader::new().kconfig(config).load_file(obj)?;
    let map = e
        .maps()
        .iter()
        .find(|m| m.name().ends_with(".kconfig"))
        .expect("a .kconfig map");
    let v = map.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    Ok(v.iter().map(|b| format!("{b:02x}")).collect())
}

/// A valid value for every extern but `except`, so that neither side
/// needs the system's config (libbpf refuses a load that would without
/// one, even for weak externs; ember does not).
fn others(except: &str) -> String {
    let base = [
        ("BOOL", "y"),
        ("CHAR", "m"),
        ("U8", "1"),
        ("S16", "-2"),
        ("U16", "3"),
        ("S32", "-4"),
        ("U32", "5"),
        ("S64", "-6"),
        ("U64", "7"),
        ("TRI", "m"),
        ("STR", "\"s\""),
    ];
    base.iter()
        .filter(|(x, _)| *x != except)
        .map(|(x, v)| format!("CONFIG_EMBER_{x}={v}\n"))
        .collect()
}

fn system_config() -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Path::new("/proc/config.gz").exists()
        || Path::new(&format!("/boot/config-{}", release.trim())).exists()
}

/// Whether both took the config (`false`: both refused).
fn check(oracle: &Path, obj: &Path, config: &str, dir: &Path, name: &str, value: &str) -> bool {
    let want = libbpf(oracle, obj, config, dir);
    match (ember(obj, config), want) {
        (Ok(got), Some(want)) => {
            assert_eq!(got, want, "{config:?}");
            true
        }
        (Err(LoadError::Kconfig { name: n, reason }), None) => {
            // An empty value refuses the whole text (as libbpf does),
            // reported at the first extern looked up.
            if !value.is_empty() {
                assert_eq!(n, name, "{config:?}");
            }
            // The value as written is named (libbpf names a number out of
            // range as it read it: -1 as 18446744073709551615).
            let shown = match value {
                "" => "no value",
                "-" => "",
                v => v,
            };
            assert!(reason.contains(shown), "{config:?}: {reason}");
            false
        }
        (Ok(got), None) => panic!("{config:?}: ember took it ({got}), libbpf refused"),
        (Err(e), Some(want)) => panic!("{config:?}: ember refused ({e}), libbpf gave {want}"),
        (Err(e), None) => panic!("{config:?}: both refused, but ember's error is {e:?}"),
    }
}

/// The test lock, a scratch directory and the built oracle; `None` (with
/// the reason printed) when the kernel or libbpf-dev is missing.
fn setup() -> Option<(std::sync::MutexGuard<'static, ()>, PathBuf, PathBuf)> {
    let lock = serial();
    if !kernel_ready() {
        return None;
    }
    let dir = tmp();
    let oracle = build_oracle("libbpf_kconfig", &dir)?;
    Some((lock, dir, oracle))
}

#[test]
fn kconfig_values_match_libbpf() {
    let Some((_s, dir, oracle)) = setup() else {
        return;
    };
    let obj = fixture("kconfig_types.bpf-el.o");
    let (mut took, mut refused) = (0, 0);
    for x in EXTERNS {
        let name = format!("CONFIG_EMBER_{x}");
        for v in VALUES {
            let config = format!("{name}={v}\n{}", others(x));
            if check(&oracle, &obj, &config, &dir, &name, v) {
                took += 1;
            } else {
                refused += 1;
            }
        }
    }
    // Both outcomes are well represented (measured: 165 taken, 275
    // refused).
    assert!(
        took >= 100 && refused >= 100,
        "{took} taken, {refused} refused"
    );
    eprintln!("kconfig oracle: {took} values taken by both, {refused} refused by both");
    // The first of two wins.
    let twice = format!("CONFIG_EMBER_U32=1\nCONFIG_EMBER_U32=2\n{}", others("U32"));
    assert!(check(&oracle, &obj, &twice, &dir, "CONFIG_EMBER_U32", "?"));
    // `is not set` is no value: the extern, weak, falls back to the
    // system's config (where it is not either), so both read 0 (the char
    // would hold 'n' if the line were taken as `n`).
    if system_config() {
        let unset = format!("# CONFIG_EMBER_CHAR is not set\n{}", others("CHAR"));
        assert!(check(&oracle, &obj, &unset, &dir, "CONFIG_EMBER_CHAR", "?"));
    } else {
        eprintln!("skipped the 'is not set' case: no /proc/config.gz or /boot/config-*");
    }
    // A value of CRs for an option no extern names is not an empty one,
    // and the text ends at a NUL (libbpf's C string).
    let cr = format!("CONFIG_OTHER=\r\n{}", others(""));
    assert!(check(&oracle, &obj, &cr, &dir, "CONFIG_OTHER", "?"));
    let nul = format!("{}\0CONFIG_OTHER\n", others(""));
    assert!(check(&oracle, &obj, &nul, &dir, "CONFIG_OTHER", "?"));
    // A CONFIG_ line without `=` refuses the whole text, even an option
    // no extern names.
    let libbpf_took = libbpf(
        &oracle,
        &obj,
        &format!("CONFIG_OTHER\n{}", others("")),
        &dir,
    );
    assert_eq!(libbpf_took, None);
    match ember(&obj, &format!("CONFIG_OTHER\n{}", others(""))) {
        Err(LoadError::Kconfig { reason, .. }) => {
            assert!(
                reason.contains("line 1 'CONFIG_OTHER': no separator"),
                "{reason}"
            );
        }
        other => panic!(
            "ember took a config libbpf refuses: {:?}",
            other.map(|_| ())
        ),
    }
}

/// libbpf's rules for .kconfig extern names: an unknown `LINUX_*` is 0
/// when weak (so refused if its type holds no number) and refused when
/// strong; a name with neither prefix is refused even when weak. ember
/// agrees, naming the extern.
#[test]
fn kconfig_names_match_libbpf() {
    let Some((_s, dir, oracle)) = setup() else {
        return;
    };
    for (file, name, loads) in [
        ("linux_weak", "LINUX_EMBER_UNKNOWN", true),
        ("linux_strong", "LINUX_EMBER_UNKNOWN", false),
        ("other_name", "EMBER_NOT_AN_OPTION", false),
        ("linux_weak_tristate", "LINUX_EMBER_UNKNOWN", false),
    ] {
        let obj = fixture(&format!("kconfig/{file}.bpf-el.o"));
        let took = check(&oracle, &obj, "", &dir, name, "-");
        assert_eq!(took, loads, "{file}");
    }
}

/// `ember load --kconfig FILE` takes its values from the file, and a
/// value the extern cannot hold is refused with the extern and the value
/// named.
#[test]
fn cli_load_takes_kconfig_text() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let dir = tmp();
    let obj = fixture("kconfig_types.bpf-el.o");
    let run = |value: &str| {
        let file = dir.join("cli-config");
        std::fs::write(&file, format!("CONFIG_EMBER_U8={value}\n")).unwrap();
        Command::new(ember_bin())
            .arg("load")
            .arg(&obj)
            .arg("--kconfig")
            .arg(&file)
            .output()
            .expect("ember")
    };
    let ok = run("30");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("kconfig.kconfig"));
    let bad = run("300");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("CONFIG_EMBER_U8") && err.contains("'300'"),
        "{err}"
    );
}
