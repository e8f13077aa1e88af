//! One stable sort shared by the vectors ember orders off its hot paths.
//!
//! Every `slice::sort_by` call site monomorphizes the standard library's
//! sort for its element type and closure: 3–4 KiB of code each at
//! `opt-level = "z"`; sharing one saved 61 KB of the static CLI (README,
//! "Static binaries"). These functions sort a permutation of indices
//! through one non-generic comparator instead, so the sort itself is in a
//! binary once; what stays generic builds the permutation and moves the
//! elements.
//!
//! The cost is a dynamic call per comparison, which is why the CO-RE
//! candidate scan and other per-relocation sorts keep the standard sort,
//! and one index vector, allocated infallibly as the standard stable sort
//! allocates its buffer.

use alloc::vec::Vec;
use core::cmp::Ordering;

/// Sorts `v` by `cmp`, keeping equal elements in their order (a stable
/// sort, like `slice::sort_by`).
pub fn sort_by<T>(v: &mut [T], mut cmp: impl FnMut(&T, &T) -> Ordering) {
    if v.len() < 2 {
        return;
    }
    let mut perm: Vec<usize> = (0..v.len()).collect();
    sort_indices(&mut perm, &mut |a, b| match (v.get(a), v.get(b)) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => Ordering::Equal,
    });
    permute(v, &mut perm);
}

/// Sorts `v` by the key `key` gives each element, stably.
pub fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a).cmp(&key(b)));
}

/// Sorts `v` in its `Ord` order, stably.
pub fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// The one instantiation of the standard sort: indices, compared through
/// `cmp` and then by index, so the unstable sort (smaller, allocation-free)
/// gives the stable order.
#[inline(never)]
fn sort_indices(perm: &mut [usize], cmp: &mut dyn FnMut(usize, usize) -> Ordering) {
    perm.sort_unstable_by(|&a, &b| cmp(a, b).then(a.cmp(&b)));
}

/// Reorders `v` so that element `i` is the one that was at `perm[i]`, in
/// place: each cycle of the permutation is walked once with swaps, and
/// `perm` marks what is done (so it is consumed).
fn permute<T>(v: &mut [T], perm: &mut [usize]) {
    const DONE: usize = usize::MAX;
    for start in 0..perm.len() {
        let mut at = start;
        // Invariant: `v[at]` holds the element that was at `start`, and
        // every position of the cycle before `at` holds its final element.
        while let Some(&next) = perm.get(at) {
            if next == DONE {
                break;
            }
            if let Some(slot) = perm.get_mut(at) {
                *slot = DONE;
            }
            if next == start {
                break;
            }
            v.swap(at, next);
            at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn matches_the_standard_stable_sort() {
        // Pairs with many equal keys: stability shows in the second field.
        let mut seed = 0x2545_f491_u32;
        for n in [0usize, 1, 2, 3, 7, 20, 33, 257, 1000] {
            let v: Vec<(u8, usize)> = (0..n)
                .map(|i| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    ((seed % 7) as u8, i)
                })
                .collect();
            let mut ours = v.clone();
            sort_by_key(&mut ours, |p| p.0);
            let mut std = v.clone();
            std.sort_by_key(|p| p.0);
            assert_eq!(ours, std, "n = {n}");
        }
    }

    #[test]
    fn moves_elements_that_are_not_copy() {
        let mut v = vec![
            alloc::string::String::from("b"),
            "c".into(),
            "a".into(),
            "b".into(),
        ];
        sort(&mut v);
        assert_eq!(v, ["a", "b", "b", "c"]);
        sort_by(&mut v, |a, b| b.cmp(a));
        assert_eq!(v, ["c", "b", "b", "a"]);
    }
}
