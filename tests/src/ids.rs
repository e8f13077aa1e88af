//! The kernel's program, map and link ids (by id walk), to show a test
//! leaves none of its own behind on a machine where other processes create
//! and free theirs at any time.

use core::time::Duration;
use std::collections::BTreeSet;
use std::time::Instant;

use ember_sys::{AsFd, Id, LinkId, MapId, ProgId};

fn walk<I: Id>() -> BTreeSet<u32> {
    ember_sys::obj_ids::<I>()
        .map(|i| i.expect("id walk").get())
        .collect()
}

/// Program, map and link ids the kernel has.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ids {
    /// Program ids.
    pub progs: BTreeSet<u32>,
    /// Map ids.
    pub maps: BTreeSet<u32>,
    /// Link ids.
    pub links: BTreeSet<u32>,
}

impl Ids {
    /// The ids there are now.
    pub fn now() -> Ids {
        Ids {
            progs: walk::<ProgId>(),
            maps: walk::<MapId>(),
            links: walk::<LinkId>(),
        }
    }

    /// Ids in `self` but not in `before`.
    pub fn new_since(&self, before: &Ids) -> Ids {
        let d = |a: &BTreeSet<u32>, b: &BTreeSet<u32>| a.difference(b).copied().collect();
        Ids {
            progs: d(&self.progs, &before.progs),
            maps: d(&self.maps, &before.maps),
            links: d(&self.links, &before.links),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.progs.is_empty() && self.maps.is_empty() && self.links.is_empty()
    }
}

/// Ids of objects some process other than this one holds an fd of.
fn held_elsewhere() -> BTreeSet<u32> {
    let me = std::process::id().to_string();
    let mut held = BTreeSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return held;
    };
    for p in procs.flatten() {
        let name = p.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fdinfo")) else {
            continue;
        };
        for f in fds.flatten() {
            let Ok(text) = std::fs::read_to_string(f.path()) else {
                continue;
            };
            for l in text.lines() {
                for key in ["prog_id:", "map_id:", "link_id:"] {
                    if let Some(id) = l.strip_prefix(key).and_then(|v| v.trim().parse().ok()) {
                        held.insert(id);
                    }
                }
            }
        }
    }
    held
}

/// Objects created since `before` that are this process's: freed objects
/// may take a moment to leave the id tables (deferred frees), so this waits
/// up to a second. Of what remains, those another process holds, and those
/// not named like one of `ours` (programs and maps by name, cut to the
/// kernel's 15 bytes; a link by its program), belong to other tests.
pub fn leaked_since<S: AsRef<str>>(before: &Ids, ours: &[S]) -> Ids {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let new = Ids::now().new_since(before);
        if new.is_empty() {
            return new;
        }
        if Instant::now() > deadline {
            let other = held_elsewhere();
            let named = |n: &str| !n.is_empty() && ours.iter().any(|o| o.as_ref().starts_with(n));
            let prog = |id: u32| {
                ember_sys::get_fd_by_id(ProgId(id), 0)
                    .and_then(|fd| ember_sys::prog_info(fd.as_fd()))
                    .is_ok_and(|i| named(i.name()))
            };
            let map = |id: u32| {
                ember_sys::get_fd_by_id(MapId(id), 0)
                    .and_then(|fd| ember_sys::map_info(fd.as_fd()))
                    .is_ok_and(|i| named(i.name()))
            };
            let link = |id: u32| {
                ember_sys::get_fd_by_id(LinkId(id), 0)
                    .and_then(|fd| ember_sys::link_info(fd.as_fd()))
                    .is_ok_and(|l| prog(l.prog_id.get()))
            };
            let keep = |s: BTreeSet<u32>, ours: &dyn Fn(u32) -> bool| {
                s.into_iter()
                    .filter(|i| !other.contains(i) && ours(*i))
                    .collect()
            };
            return Ids {
                progs: keep(new.progs, &prog),
                maps: keep(new.maps, &map),
                links: keep(new.links, &link),
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
