#!/usr/bin/env bash
# The README's quick start:
#   ./run.sh start   set up what is missing, build the site, serve it with live labs
#   ./run.sh test    set up what is missing (Docker engine, Chromium too), run every test
#   ./run.sh test-proxy / test-hosts   the reverse-proxy and host suites (CI runs both)
# HOST and PORT choose where the site listens (default 127.0.0.1:4321).
set -euo pipefail
cd "$(dirname "$0")"
cmd="${1:-start}"
case "$cmd" in
  start)
    source scripts/setup.sh start
    setup_main
    npm run build --silent
    exec npm start --silent
    ;;
  test)
    source scripts/setup.sh test
    setup_main
    exec npm test --silent
    ;;
  test-proxy)
    # The reverse-proxy tests (deploy/nginx.conf, deploy/Caddyfile) need nginx and Caddy;
    # CI runs them after `test`.
    source scripts/setup.sh test
    setup_main
    ensure_proxy_tools
    exec npm run test:proxy --silent
    ;;
  test-hosts)
    # The host suite (hosts/README.md): the labs on Debian 13 VMs with AppArmor and
    # cgroup v2, rootful and rootless; needs QEMU and mmdebstrap. CI runs it last.
    source scripts/setup.sh test
    setup_main
    ensure_hosts_tools
    exec npm run test:hosts --silent
    ;;
  setup)
    source scripts/setup.sh test
    setup_main
    ;;
  *)
    echo "usage: ./run.sh start|test|test-proxy|test-hosts|setup" >&2
    exit 2
    ;;
esac
