#!/usr/bin/env bash
# Starts what sifkit's integration tests need on this machine, if it is not
# already running: a Docker engine (no bridge: containers use host or none
# networking), the locally made base images, and a one-node Slurm cluster.
# Safe to run again. Needs root (CI and the dev machines run as root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
logdir=${SIFKIT_SERVICES_LOG:-/tmp/sifkit-services}
mkdir -p "$logdir"

start_docker() {
  if docker info >/dev/null 2>&1; then return; fi
  echo "starting dockerd (log: $logdir/dockerd.log)"
  setsid dockerd --iptables=false --ip6tables=false --bridge=none >"$logdir/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return
    sleep 0.5
  done
  tail -n 20 "$logdir/dockerd.log" >&2
  echo "dockerd did not come up" >&2
  exit 1
}

start_docker
bash "$here/../test/setup/base-image.sh"
if [ -f "$here/../test/setup/slurm.sh" ]; then bash "$here/../test/setup/slurm.sh"; fi
echo "services ready"
