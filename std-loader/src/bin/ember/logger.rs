//! The library's `log` records on stderr, as `ember: LEVEL: message`.
//! Default level info, as libbpf's default print callback (warnings and
//! notices, not debug); `EMBER_LOG=off|error|warn|info|debug|trace` picks
//! another. No logger crate: this is all the CLI needs.

use std::io::Write as _;

use log::{LevelFilter, Log, Metadata, Record};

struct Stderr;

impl Log for Stderr {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            let level = r.level().as_str().to_ascii_lowercase();
            // Nowhere to report a failed write to stderr.
            let _ = writeln!(std::io::stderr().lock(), "ember: {level}: {}", r.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: Stderr = Stderr;

/// The level `EMBER_LOG` names (`None`: unset or not a level).
fn level(var: Option<&str>) -> LevelFilter {
    var.and_then(|v| v.trim().parse().ok())
        .unwrap_or(LevelFilter::Info)
}

/// Installs the stderr logger at `EMBER_LOG`'s level (default info).
pub(crate) fn init() {
    let var = std::env::var("EMBER_LOG").ok();
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level(var.as_deref()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_from_env() {
        assert_eq!(level(None), LevelFilter::Info);
        assert_eq!(level(Some("warn")), LevelFilter::Warn);
        assert_eq!(level(Some("DEBUG")), LevelFilter::Debug);
        assert_eq!(level(Some("off")), LevelFilter::Off);
        assert_eq!(level(Some("loud")), LevelFilter::Info);
    }
}
