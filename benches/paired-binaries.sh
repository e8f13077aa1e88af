#!/bin/sh
# Two builds of one command compared in interleaved rounds: how README's
# "what changed this round" percentages were measured. Each round runs
# `perf stat -r 10` of the old binary, then of the new one, and takes each
# side's mean task-clock (CPU time, so waiting for a CPU is not counted);
# the script prints both medians and the median and quartiles of the
# per-round ratio new/old (<1: the new build is faster).
#
#   benches/paired-binaries.sh ROUNDS OLD NEW ARGS...
#   e.g. benches/paired-binaries.sh 9 /tmp/ember.old target/release/ember \
#          load tests/fixtures/core_only.bpf-el.o
#
# Keep the old build with `cp target/release/ember /tmp/ember.old` before
# the change. Needs perf and python3; loads need root.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 ROUNDS OLD NEW ARGS..." >&2; exit 2; }
rounds=$1 old=$2 new=$3
shift 3
command -v perf >/dev/null || { echo "paired-binaries.sh: needs perf" >&2; exit 1; }
i=0
while [ "$i" -lt "$rounds" ]; do
  a=$(perf stat -x, -r 10 -e task-clock "$old" "$@" 2>&1 >/dev/null | cut -d, -f1)
  b=$(perf stat -x, -r 10 -e task-clock "$new" "$@" 2>&1 >/dev/null | cut -d, -f1)
  echo "$a $b"
  i=$((i + 1))
done | python3 -c '
import statistics as st, sys
rows = [tuple(map(float, l.split())) for l in sys.stdin]
r = sorted(b / a for a, b in rows)
q = st.quantiles(r, n=4) if len(r) > 1 else r * 3
print("old %.3f ms  new %.3f ms  new/old median %.3f (quartiles %.3f-%.3f, %d rounds)" % (
    st.median(a for a, _ in rows), st.median(b for _, b in rows), st.median(r), q[0], q[2], len(r)))'
