#!/usr/bin/env bash
# Makes the operations tools the tests need available, idempotently:
#   promtool        -> .tools/bin/promtool (from Debian's `prometheus` package when none is on PATH)
#   docker-compose  -> Debian's `docker-compose` (1.29.2; validates compose files offline, needs no engine)
#   chromium        -> Debian's `chromium` (the waiting-room page test drives it with playwright-core)
#   faketime        -> Debian's `faketime` (libfaketime: the clock-skew fault test runs an API process under it)
#   nginx           -> .tools/bin/nginx (from Debian's `nginx` package; grafana/compose-run.test.ts runs the compose lb config)
# Safe to run again: a tool that is already there is left alone. CI calls this before `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="$ROOT/.tools/bin"
mkdir -p "$BIN"

say() { echo "ensure-tools: $*"; }

# apt needs root; use sudo when we are not root and it is there.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi
updated=0
apt_update_once() {
  if [ "$updated" -eq 0 ]; then
    say "apt-get update"
    $SUDO apt-get update -qq
    updated=1
  fi
}

# ---- promtool ---------------------------------------------------------------------------------------------
if [ -x "$BIN/promtool" ] && "$BIN/promtool" --version >/dev/null 2>&1; then
  say "promtool: already at .tools/bin/promtool ($("$BIN/promtool" --version 2>&1 | head -n1))"
elif command -v promtool >/dev/null 2>&1; then
  ln -sf "$(command -v promtool)" "$BIN/promtool"
  say "promtool: found on PATH at $(command -v promtool); linked to .tools/bin/promtool"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # `apt-get download` writes into the current folder and needs no root; it does need a package list.
  if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    apt_update_once
    (cd "$tmp" && apt-get download prometheus)
  fi
  deb=$(ls "$tmp"/prometheus_*.deb | head -n1)
  dpkg -x "$deb" "$tmp/x"
  cp "$tmp/x/usr/bin/promtool" "$BIN/promtool"
  chmod +x "$BIN/promtool"
  say "promtool: extracted from $(basename "$deb") to .tools/bin/promtool ($("$BIN/promtool" --version 2>&1 | head -n1))"
fi

# ---- docker-compose ---------------------------------------------------------------------------------------
if command -v docker-compose >/dev/null 2>&1; then
  say "docker-compose: already installed ($(docker-compose version --short 2>/dev/null || echo '?'))"
else
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1; then
    apt_update_once
    $SUDO apt-get install -y -qq --no-install-recommends docker-compose
  fi
  say "docker-compose: installed with apt-get ($(docker-compose version --short 2>/dev/null || echo '?'))"
fi

# ---- chromium (the waiting-room page's end-to-end test; Debian's build, never a downloaded one) -------------
if [ -x /usr/bin/chromium ]; then
  say "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
else
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; then
    apt_update_once
    $SUDO apt-get install -y -qq --no-install-recommends chromium
  fi
  say "chromium: installed with apt-get ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
fi

# ---- faketime (clock-skew fault tests run one API process under libfaketime; Debian's `faketime` package) ------
if command -v faketime >/dev/null 2>&1; then
  say "faketime: already installed ($(command -v faketime))"
else
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq --no-install-recommends faketime >/dev/null 2>&1; then
    apt_update_once
    $SUDO apt-get install -y -qq --no-install-recommends faketime
  fi
  say "faketime: installed with apt-get ($(command -v faketime))"
fi

# ---- nginx (the compose stack's load balancer config is run for real by grafana/compose-run.test.ts) ----------
# Extracted from Debian's package like promtool: installing it would start a system service on port 80.
if [ -x "$BIN/nginx" ] && "$BIN/nginx" -v >/dev/null 2>&1; then
  say "nginx: already at .tools/bin/nginx ($("$BIN/nginx" -v 2>&1 | head -n1))"
else
  ntmp=$(mktemp -d)
  if ! (cd "$ntmp" && apt-get download nginx >/dev/null 2>&1); then
    apt_update_once
    (cd "$ntmp" && apt-get download nginx)
  fi
  dpkg -x "$(ls "$ntmp"/nginx_*.deb | head -n1)" "$ntmp/x"
  cp "$ntmp/x/usr/sbin/nginx" "$BIN/nginx"
  chmod +x "$BIN/nginx"
  rm -rf "$ntmp"
  say "nginx: extracted from Debian's package to .tools/bin/nginx ($("$BIN/nginx" -v 2>&1 | head -n1))"
fi
