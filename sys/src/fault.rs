//! Fault injection, for tests only (cargo feature `fault-inject`, off by
//! default; the `ember-tests` crate turns it on): fails the Nth system
//! call ember-sys makes on this thread with a chosen errno, so a test can
//! sweep every call of a load or an attach and check that each failure is
//! reported and leaves nothing behind.
//!
//! Every call through the funnel in `raw` is counted (each `bpf(2)`
//! command, `perf_event_open`, the perf ioctls; each restart after
//! `EINTR` counts again), and so are `mmap`, `epoll_create1` and
//! `epoll_ctl`. The plan is per thread (a load or an attach makes all its
//! calls on the calling thread), so tests running in parallel threads do
//! not see each other's faults.
//!
//! [`arm`] fails one call (a transient fault: retries and fallbacks then
//! succeed); [`arm_from`] fails that call and every later one (a lasting
//! fault: they fail too, and the error paths behind them run).
//!
//! ```ignore
//! ember_sys::fault::count();           // count, fail nothing
//! let ok = load();
//! let n = ember_sys::fault::disarm().calls;
//! for i in 1..=n {
//!     ember_sys::fault::arm(i, Errno::NOMEM);
//!     let r = load();
//!     let report = ember_sys::fault::disarm();
//!     // report.failed names the call that was failed, if it was reached
//! }
//! ```
//!
//! With the feature off this module does not exist and the funnel has no
//! hook.

use core::cell::Cell;

use rustix::io::Errno;

/// This thread's plan.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Whether calls are counted at all.
    on: bool,
    /// Calls made since the plan was armed.
    calls: u64,
    /// The call to fail (1-based); 0 fails none.
    fail_at: u64,
    /// Whether every call after `fail_at` fails too.
    sticky: bool,
    /// With this errno.
    errno: Errno,
    /// The first call that was failed.
    failed: Option<&'static str>,
    /// Calls failed.
    failures: u64,
    /// The call before which `hook` runs (1-based); 0 runs none.
    hook_at: u64,
    /// What runs just before call `hook_at` reaches the kernel.
    hook: Option<fn()>,
}

const OFF: Plan = Plan {
    on: false,
    calls: 0,
    fail_at: 0,
    sticky: false,
    errno: Errno::INVAL,
    failed: None,
    failures: 0,
    hook_at: 0,
    hook: None,
};

std::thread_local! {
    static PLAN: Cell<Plan> = const { Cell::new(OFF) };
}

/// What happened while a plan was armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// System calls made (attempted) since [`arm`] or [`count`].
    pub calls: u64,
    /// The call that was failed, when the Nth call was reached: the bpf
    /// command's name (`BPF_MAP_CREATE`), `perf_event_open`,
    /// `PERF_EVENT_IOC_SET_BPF`, `mmap`, `epoll_ctl`, ...
    pub failed: Option<&'static str>,
    /// How many calls were failed.
    pub failures: u64,
}

/// Fails the `n`th system call (1-based, counted from now) on this thread
/// with `errno`, once; later calls reach the kernel (a transient fault:
/// retries and fallbacks succeed). `n == 0` fails none (as [`count`]).
pub fn arm(n: u64, errno: Errno) {
    set(n, false, errno);
}

/// Fails the `n`th system call and every later one on this thread with
/// `errno` (a lasting fault: retries and fallbacks fail too), until
/// [`disarm`].
pub fn arm_from(n: u64, errno: Errno) {
    set(n, true, errno);
}

fn set(fail_at: u64, sticky: bool, errno: Errno) {
    PLAN.with(|p| {
        p.set(Plan {
            on: true,
            calls: 0,
            fail_at,
            sticky,
            errno,
            failed: None,
            failures: 0,
            hook_at: 0,
            hook: None,
        });
    });
}

/// Counts this thread's system calls from now and runs `hook` just before
/// the `n`th reaches the kernel (failing none): a test puts another
/// process's step (say, pinning the same path) exactly between two of
/// ember's calls, so a race window is hit every time instead of by
/// chance. The hook runs with counting off; its own calls are neither
/// counted nor failed.
pub fn before(n: u64, hook: fn()) {
    count();
    PLAN.with(|p| {
        let mut plan = p.get();
        plan.hook_at = n;
        plan.hook = Some(hook);
        p.set(plan);
    });
}

/// Counts this thread's system calls from now, failing none.
pub fn count() {
    arm(0, Errno::INVAL);
}

/// The calls made on this thread since [`arm`] or [`count`].
pub fn calls() -> u64 {
    PLAN.with(|p| p.get().calls)
}

/// Stops counting and failing on this thread; returns what happened.
pub fn disarm() -> Report {
    PLAN.with(|p| {
        let plan = p.replace(OFF);
        Report {
            calls: plan.calls,
            failed: plan.failed,
            failures: plan.failures,
        }
    })
}

/// Counts a call named `what`, and fails it if it is the planned one.
pub(crate) fn check_named(what: &'static str) -> Result<(), Errno> {
    PLAN.with(|p| {
        let mut plan = p.get();
        if !plan.on {
            return Ok(());
        }
        plan.calls = plan.calls.saturating_add(1);
        if plan.hook_at > 0 && plan.calls == plan.hook_at {
            if let Some(hook) = plan.hook.take() {
                p.set(OFF);
                hook();
                // Whatever the hook armed or counted is discarded.
            }
        }
        let fail = plan.fail_at > 0
            && (plan.calls == plan.fail_at || (plan.sticky && plan.calls > plan.fail_at));
        if fail {
            plan.failed = plan.failed.or(Some(what));
            plan.failures = plan.failures.saturating_add(1);
        }
        p.set(plan);
        if fail { Err(plan.errno) } else { Ok(()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_the_nth_call_once_and_counts() {
        arm(2, Errno::NOMEM);
        assert_eq!(check_named("a"), Ok(()));
        assert_eq!(check_named("b"), Err(Errno::NOMEM));
        assert_eq!(check_named("c"), Ok(()));
        assert_eq!(calls(), 3);
        assert_eq!(
            disarm(),
            Report {
                calls: 3,
                failed: Some("b"),
                failures: 1,
            }
        );
        // Off: nothing counted.
        assert_eq!(check_named("d"), Ok(()));
        assert_eq!(calls(), 0);
        // From the 2nd call on.
        arm_from(2, Errno::PERM);
        assert_eq!(check_named("a"), Ok(()));
        assert_eq!(check_named("b"), Err(Errno::PERM));
        assert_eq!(check_named("c"), Err(Errno::PERM));
        assert_eq!(
            disarm(),
            Report {
                calls: 3,
                failed: Some("b"),
                failures: 2,
            }
        );
    }

    #[test]
    fn a_hook_runs_once_before_the_nth_call_uncounted() {
        std::thread_local! {
            static RAN: Cell<u64> = const { Cell::new(0) };
        }
        fn hook() {
            // A call made by the hook is not counted against the plan.
            assert_eq!(check_named("inner"), Ok(()));
            RAN.with(|r| r.set(r.get() + 1));
        }
        before(2, hook);
        assert_eq!(check_named("a"), Ok(()));
        assert_eq!(RAN.with(Cell::get), 0);
        assert_eq!(check_named("b"), Ok(()));
        assert_eq!(RAN.with(Cell::get), 1);
        assert_eq!(check_named("c"), Ok(()));
        assert_eq!(RAN.with(Cell::get), 1, "once");
        assert_eq!(
            disarm(),
            Report {
                calls: 3,
                failed: None,
                failures: 0,
            }
        );
    }

    #[test]
    fn an_injected_eintr_is_restarted_by_the_funnel() {
        let _f = crate::raw::fake::Fake::install();
        arm(1, Errno::INTR);
        let r = crate::cmd::map::map_create(&crate::MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            name: "x",
            ..crate::MapCreate::default()
        });
        let rep = disarm();
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(rep.calls, 2, "the restart is a second call");
        assert_eq!(rep.failed, Some("BPF_MAP_CREATE"));
        // A lasting EINTR is restarted a bounded number of times, then
        // reported: never a hang.
        arm_from(1, Errno::INTR);
        let r = crate::cmd::map::map_create(&crate::MapCreate {
            map_type: 2,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            name: "x",
            ..crate::MapCreate::default()
        });
        let rep = disarm();
        assert_eq!(r.map(drop).map_err(|e| e.errno), Err(Errno::INTR));
        assert_eq!((rep.calls, rep.failures), (9, 9));
    }
}
