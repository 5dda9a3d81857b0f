#!/bin/sh
# Entry point of the server image. Fails early, with the fix, when the engine socket is
# mounted but this (non-root) user may not use it; otherwise runs the command (the server,
# or `node labs/build-images.ts` for compose's one-shot `images` service).
set -eu
sock=""
case "${DOCKER_HOST:-}" in
  "") sock=/var/run/docker.sock ;;
  unix://*) sock="${DOCKER_HOST#unix://}" ;;
esac
if [ -n "$sock" ] && [ -S "$sock" ] && ! { [ -r "$sock" ] && [ -w "$sock" ]; }; then
  gid=$(stat -c %g "$sock" 2>/dev/null || echo '?')
  echo "container-labs: user $(id -u) (groups $(id -G)) may not use $sock, which belongs to group $gid." >&2
  if [ "$sock" = /var/run/docker.sock ]; then
    echo "  Give the container that group: DOCKER_GID=$gid docker compose up -d" >&2
    echo "  (or put DOCKER_GID=$gid in .env beside compose.yaml; with docker run: --group-add $gid)." >&2
  else
    # The engine filter's socket (compose.yaml): its mode and group are CL_FILTER_SOCKET_*.
    echo "  Give this user group $gid (docker run --group-add $gid), or change the socket's group." >&2
  fi
  exit 78
fi
exec "$@"
