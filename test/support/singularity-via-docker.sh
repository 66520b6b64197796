#!/bin/bash
# Stands in for `singularity exec`, which cannot be installed on this machine,
# so that the module's scripts run unchanged against a built image: it runs
# `singularity exec [-B SRC[:DST][,...]]... IMAGE CMD...` as `docker run`,
# with $SINGULARITY_BIND bound as singularity binds it. Nothing else of
# singularity (env passing, home, /.singularity.d) is imitated.
set -euo pipefail
if [ "${1:-}" != exec ]; then echo "singularity-via-docker: only 'exec' is supported" >&2; exit 2; fi
shift
binds=()
if [ -n "${SINGULARITY_BIND:-}" ]; then IFS=',' read -ra binds <<< "$SINGULARITY_BIND"; fi
while [ "${1:-}" = -B ]; do
  IFS=',' read -ra more <<< "$2"
  binds+=("${more[@]}")
  shift 2
done
image=$1
shift
args=()
for b in "${binds[@]}"; do
  [ -n "$b" ] || continue
  src=${b%%:*}
  dst=${b#*:}
  args+=(-v "$src:${dst:-$src}")
done
exec docker run --rm --init --network=none --label sifkit.test.singularity-via-docker=1 "${args[@]}" "$image" "$@"
