#!/bin/sh
# A fuzz campaign measured in CPU time, not wall time: issue 12 asks for at
# least one CPU-hour per target, and on a shared machine the fuzzer runs at
# nice 19 so builds and benchmarks keep the cores. The fuzzers are stopped
# (SIGINT, so libFuzzer prints its final stats) once their summed user +
# system time reaches the budget.
#
#   [WORKERS=N] fuzz/campaign.sh TARGET [CPU_SECONDS=3600] [extra seed dirs...]
#
# WORKERS (default 1) runs N fuzzers of the one target on one shared corpus
# (libFuzzer reloads the corpus directory every second, so each sees what the
# others find); the budget is their sum, so two workers spend it in half the
# wall time when the machine is otherwise idle.
#
# Seeds: fuzz/seeds/TARGET, plus any extra directories (libFuzzer reads them
# recursively; the fixture objects are a good seed for object-shaped
# targets). New inputs go to fuzz/corpus/TARGET (not committed). Coverage is
# measured once at the end by replaying the corpus and the seeds, so it
# counts what every worker found. A crash leaves its input in fuzz/artifacts/TARGET.
set -eu
target=$1
budget=${2:-3600}
workers=${WORKERS:-1}
[ $# -ge 2 ] && shift 2 || shift $#
cd "$(dirname "$0")"
cargo +nightly fuzz build "$target" >/dev/null
bin=target/x86_64-unknown-linux-gnu/release/$target
mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target" logs
stamp=$(date -u +%Y%m%dT%H%M)
ticks=$(getconf CLK_TCK)
start=$(date -u +%s)
pids=
logs=
w=1
while [ "$w" -le "$workers" ]; do
  log=logs/$target-$stamp-w$w.log
  nice -n 19 "$bin" "corpus/$target" "seeds/$target" "$@" \
    -artifact_prefix="artifacts/$target/" -max_len=70000 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 &
  pids="$pids $!"
  logs="$logs $log"
  w=$((w + 1))
done
# The CPU of a worker that has exited is remembered in last_<pid>, and it
# is marked gone_<pid>: its pid may be reused by another process, which
# must be neither counted nor signalled.
cpu=0
while :; do
  alive=
  total=0
  for pid in $pids; do
    # Fields 14 and 15 of /proc/PID/stat: utime and stime in clock ticks;
    # field 4, the parent, says the pid is still our worker.
    eval "gone=\${gone_$pid:-}"
    if [ -z "$gone" ] &&
      t=$(awk -v p=$$ '$4 == p { print $14 + $15; f = 1 } END { exit !f }' \
        "/proc/$pid/stat" 2>/dev/null); then
      alive="$alive $pid"
      eval "last_$pid=$t"
    else
      eval "gone_$pid=1; t=\${last_$pid:-0}"
    fi
    total=$((total + t))
  done
  cpu=$((total / ticks))
  [ -n "$alive" ] || break
  if [ "$cpu" -ge "$budget" ]; then
    for pid in $alive; do kill -INT "$pid" 2>/dev/null || true; done
    break
  fi
  sleep 5
done
rc=0
for pid in $pids; do
  wait "$pid" || rc=$?
done
end=$(date -u +%s)
execs=0
for log in $logs; do
  e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  execs=$((execs + ${e:-0}))
done
# Replay the corpus and the seeds once (no mutation) for the coverage
# every worker found: libFuzzer writes only new inputs to the corpus, so
# what the seeds alone reach is counted from them.
covlog=logs/$target-$stamp-cov.log
nice -n 19 "$bin" "corpus/$target" "seeds/$target" "$@" -runs=0 -max_len=70000 \
  -rss_limit_mb=2048 >"$covlog" 2>&1 || true
cov=$(grep -o 'cov: [0-9]*' "$covlog" | tail -n 1 | cut -d' ' -f2)
echo "$target: workers $workers cpu ${cpu}s wall $((end - start))s execs $execs cov ${cov:-?} exit $rc logs fuzz/logs/$target-$stamp-*"
ls "artifacts/$target" | sed 's/^/  finding: /'
