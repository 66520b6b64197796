#!/usr/bin/env bash
# What `npm test` checks before jest: the build, the type check, the lint and
# the format check. Each is one process on one core, and none reads what
# another writes (dist/ is ignored by eslint and prettier), so they run at
# once: on 2 cores the four take about the time of the longest two, not the
# sum. Each one's output is shown when it fails; the exit is 1 if any fails.
set -uo pipefail
cd "$(dirname "$0")/.."
checks=(build typecheck lint format:check)
logs=$(mktemp -d "${TMPDIR:-/tmp}/sifkit-pretest-XXXXXX")
pids=()
# Ctrl-C or a kill stops the checks still running; the logs go in every case.
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$logs"; exit 130' INT TERM
trap 'rm -rf "$logs"' EXIT
for i in "${!checks[@]}"; do
  npm run "${checks[$i]}" --silent >"$logs/$i.log" 2>&1 &
  pids+=($!)
done
rc=0
for i in "${!checks[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "npm run ${checks[$i]} failed:" >&2
    cat "$logs/$i.log" >&2
    rc=1
  fi
done
exit $rc
