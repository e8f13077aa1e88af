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
const VALUES: [&str; 40] = [
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

/// Whether both took the config (`false`: both refused).
fn check(oracle: &Path, obj: &Path, config: &str, dir: &Path, name: &str, value: &str) -> bool {
    let want = libbpf(oracle, obj, config, dir);
    match (ember(obj, config), want) {
        (Ok(got), Some(want)) => {
            assert_eq!(got, want, "{config:?}");
            true
        }
        (Err(LoadError::Kconfig { name: n, reason }), None) => {
            assert_eq!(n, name, "{config:?}");
            // The value as written is named (libbpf names a number out of
            // range as it read it: -1 as 18446744073709551615).
            let shown = if value.is_empty() { "no value" } else { value };
            assert!(reason.contains(shown), "{config:?}: {reason}");
            false
        }
        (Ok(got), None) => panic!("{config:?}: ember took it ({got}), libbpf refused"),
        (Err(e), Some(want)) => panic!("{config:?}: ember refused ({e}), libbpf gave {want}"),
        (Err(e), None) => panic!("{config:?}: both refused, but ember's error is {e:?}"),
    }
}

#[test]
fn kconfig_values_match_libbpf() {
    let _s = serial();
    if !kernel_ready() {
        return;
    }
    let dir = tmp();
    let Some(oracle) = build_oracle("libbpf_kconfig", &dir) else {
        return;
    };
    let obj = fixture("kconfig_types.bpf-el.o");
    let (mut took, mut refused) = (0, 0);
    for x in EXTERNS {
        let name = format!("CONFIG_EMBER_{x}");
        for v in VALUES {
            if check(&oracle, &obj, &format!("{name}={v}\n"), &dir, &name, v) {
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
    // Neither takes `is not set` as a value, and the first of two wins.
    let shapes = [
        ("# CONFIG_EMBER_BOOL is not set\n", "CONFIG_EMBER_BOOL"),
        (
            "CONFIG_EMBER_U32=1\nCONFIG_EMBER_U32=2\n",
            "CONFIG_EMBER_U32",
        ),
        (
            "CONFIG_EMBER_TRI=y\nCONFIG_EMBER_STR=\"ab\"\nCONFIG_EMBER_S64=-5\n",
            "CONFIG_EMBER_TRI",
        ),
    ];
    for (config, name) in shapes {
        assert!(check(&oracle, &obj, config, &dir, name, "?"), "{config:?}");
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
