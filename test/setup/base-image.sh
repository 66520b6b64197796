#!/usr/bin/env bash
# Makes the base images the tests and the example recipe build FROM.
# No registry is reachable here, so `debian:bookworm-slim` is made locally
# with debootstrap and imported; a tiny busybox image serves fast fixtures.
set -euo pipefail
engine=(docker ${DOCKER_HOST:+-H "$DOCKER_HOST"})

if ! "${engine[@]}" image inspect debian:bookworm-slim >/dev/null 2>&1; then
  root=$(mktemp -d /tmp/sifkit-rootfs.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/tmp/sifkit-debootstrap.log 2>&1 \
    || { tail -n 20 /tmp/sifkit-debootstrap.log >&2; exit 1; }
  # Keep images small and apt quiet, as the slim image does.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "${engine[@]}" import - debian:bookworm-slim >/dev/null
  echo "made debian:bookworm-slim"
fi

if ! "${engine[@]}" image inspect sifkit-test/busybox:latest >/dev/null 2>&1; then
  dir=$(mktemp -d /tmp/sifkit-busybox.XXXXXX)
  mkdir -p "$dir/bin"
  cp "$(command -v busybox)" "$dir/bin/busybox"
  printf 'FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' > "$dir/Dockerfile"
  "${engine[@]}" build -q -t sifkit-test/busybox:latest "$dir" >/dev/null
  rm -rf "$dir"
  echo "made sifkit-test/busybox:latest"
fi
