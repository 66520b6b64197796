#!/usr/bin/env bash
# Sets up what `npm run demo` and `npm test` need, only what is missing,
# saying on stderr what it installs or starts and why:
#   1. the Debian packages in scripts/debian-packages.txt (root only; else
#      it names them in one line and stops),
#   2. `npm ci` when node_modules is missing or does not match package-lock,
#   3. the Docker engine, the base images, munge and Slurm when not running
#      (through scripts/services.sh),
#   4. `sifkit` on PATH: a two-line launcher of this checkout's CLI in npm's
#      global bin directory (SIFKIT_BIN_DIR to choose another), unless a
#      sifkit is on PATH already (then it says how to switch).
# Needs nothing but bash, dpkg and node/npm, since it runs before node_modules
# exists. Safe to run again; about a quarter second when all is there.
#   scripts/setup.sh [packages] [npm] [services] [path]   (default: all four)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "sifkit setup: $*" >&2; }
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(packages npm services path)
want() { local s; for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
root=no
[ "$(id -u)" -eq 0 ] && root=yes

packages() {
  local list missing=() p
  list=$(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' scripts/debian-packages.txt | awk '{print $1}')
  if ! command -v dpkg-query >/dev/null; then
    say "no dpkg here: cannot check for the Debian packages ($(echo $list)); install their equivalents"
    return 0
  fi
  # One dpkg-query for the whole list: it is most of this script's time.
  local installed
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' $list 2>/dev/null | awk '$2 == "ii" {print $1}' || true)
  for p in $list; do
    grep -qx "$p" <<<"$installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $root = no ]; then
    say "missing Debian packages, ask an administrator to install: ${missing[*]}"
    exit 1
  fi
  say "installing ${missing[*]} (missing; sifkit drives them; apt log: /tmp/sifkit-apt.log)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/sifkit-apt.log 2>&1 \
    || { tail -n 30 /tmp/sifkit-apt.log >&2; say "apt-get failed"; exit 1; }
}

npm_deps() {
  local why
  if why=$(node scripts/deps-stale.js); then return 0; fi
  if [ -L node_modules ]; then
    # A worktree sharing another checkout's node_modules: npm ci would
    # delete what the other checkout uses.
    say "node_modules is a link to $(readlink node_modules) and $why; not touching it: run npm ci there"
    exit 1
  fi
  say "running npm ci ($why)"
  npm ci --no-audit --no-fund >&2
}

services() {
  local why=()
  if ! docker info >/dev/null 2>&1; then
    why+=("the Docker engine is not answering")
  else
    docker image inspect debian:bookworm-slim sifkit-test/busybox:latest >/dev/null 2>&1 || why+=("the local base images are missing")
  fi
  if command -v slurmctld >/dev/null; then
    pgrep -x munged >/dev/null || why+=("munge is not running")
    { scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc'; } || why+=("Slurm is not up")
    if command -v slurmdbd >/dev/null; then pgrep -x slurmdbd >/dev/null || why+=("Slurm's accounting (slurmdbd) is not running"); fi
  fi
  [ ${#why[@]} -eq 0 ] && return 0
  local because
  because=$(IFS=';'; echo "${why[*]}" | sed 's/;/, /g')
  if [ $root = no ]; then
    say "$because; starting them needs root: ask an administrator to run scripts/services.sh"
    exit 1
  fi
  say "starting services ($because): scripts/services.sh"
  bash scripts/services.sh >&2
}

# A launcher, not `npm link`: that would reinstall the package's dependencies
# globally; this runs the checkout's own build, whatever its file modes.
on_path() {
  local here bin found
  here=$(pwd -P)
  bin=${SIFKIT_BIN_DIR:-$(npm prefix -g)/bin}
  found=$(command -v sifkit || true)
  if [ -n "$found" ]; then
    grep -qF -e "$here/bin/sifkit" -e "$here/dist/src/cli/main.js" "$found" 2>/dev/null && return 0
    say "sifkit on PATH is $found, not this checkout's; to run this one: $here/bin/sifkit"
    return 0
  fi
  if ! { mkdir -p "$bin" && printf '#!/bin/sh\n# sifkit from %s (written by scripts/setup.sh)\nexec sh "%s/bin/sifkit" "$@"\n' "$here" "$here" >"$bin/sifkit.tmp" && chmod 755 "$bin/sifkit.tmp" && mv "$bin/sifkit.tmp" "$bin/sifkit"; } 2>/dev/null; then
    rm -f "$bin/sifkit.tmp"
    say "cannot write $bin/sifkit; run sifkit as: $here/bin/sifkit (or set SIFKIT_BIN_DIR to a directory on PATH)"
    return 0
  fi
  case ":$PATH:" in
    *":$bin:"*) say "put sifkit on PATH: $bin/sifkit runs this checkout's build" ;;
    *) say "wrote $bin/sifkit, but $bin is not on PATH: export PATH=\"$bin:\$PATH\"" ;;
  esac
}

want packages && packages
want npm && npm_deps
want services && services
want path && on_path
exit 0
