#!/usr/bin/env bash
# make test's two lanes at once (2-core CI: QEMU's emulated dom0s and the lab fleet's SSH round
# trips each leave a core mostly idle): the BACKGROUND command runs with its output in LOG,
# printed whole once it ends; the FOREGROUND command prints as it goes. Both always run to their
# end (the background lane's hosts clean up after themselves); the exit status is non-zero when
# either failed, and the summary names which.
# Usage: run_two_lanes.sh LOG BACKGROUND_NAME BACKGROUND_CMD FOREGROUND_NAME FOREGROUND_CMD
set -uo pipefail
[ $# -eq 5 ] || { echo "usage: $0 LOG BACKGROUND_NAME BACKGROUND_CMD FOREGROUND_NAME FOREGROUND_CMD" >&2; exit 2; }
log=$1 bg_name=$2 bg_cmd=$3 fg_name=$4 fg_cmd=$5
mkdir -p "$(dirname "$log")"
started=$(date +%s)
elapsed() { echo $(( $(date +%s) - started )); }

echo "== lanes: '$bg_name' in the background (output in $log, printed when it ends), '$fg_name' here"
# A session of its own: an interrupt of this script stops the whole background lane.
setsid bash -c "$bg_cmd" >"$log" 2>&1 </dev/null &
bg_pid=$!
trap 'kill -TERM -- "-$bg_pid" 2>/dev/null; wait "$bg_pid"; exit 130' INT TERM

bash -c "$fg_cmd"
fg_rc=$?
fg_at=$(elapsed)
if kill -0 "$bg_pid" 2>/dev/null; then
  echo "== lane '$fg_name' ended (rc $fg_rc) after ${fg_at} s; waiting for '$bg_name'"
fi
wait "$bg_pid"
bg_rc=$?
bg_at=$(elapsed)
trap - INT TERM
echo "== output of the background lane '$bg_name' ($log):"
cat "$log"
echo "== lane '$fg_name': rc $fg_rc, ended after ${fg_at} s"
echo "== lane '$bg_name': rc $bg_rc, ended after ${bg_at} s"
[ "$fg_rc" -eq 0 ] && [ "$bg_rc" -eq 0 ] && exit 0
[ "$fg_rc" -ne 0 ] && echo "== FAILED: lane '$fg_name' (rc $fg_rc): its output is above, before the background lane's"
[ "$bg_rc" -ne 0 ] && echo "== FAILED: lane '$bg_name' (rc $bg_rc): see its output above (also in $log)"
exit 1
