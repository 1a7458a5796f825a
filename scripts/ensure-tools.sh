#!/usr/bin/env bash
# Makes the operations tools the tests need available, idempotently:
#   promtool        -> .tools/bin/promtool (from Debian's `prometheus` package when none is on PATH; needs no root)
#   docker-compose  -> Debian's `docker-compose` (1.29.2; validates compose files offline, needs no engine)
#   chromium        -> Debian's `chromium` (the waiting-room page test drives it with playwright-core)
#   faketime        -> Debian's `faketime` (libfaketime: the clock-skew fault test runs an API process under it)
#   pdftoppm        -> Debian's `poppler-utils` (the web app's Chromium test rasterizes the ticket PDF to decode its QR)
#   nginx           -> .tools/bin/nginx (from Debian's `nginx` package; grafana/compose-run.test.ts runs the compose lb config)
# Safe to run again: a tool that is already there is left alone. CI calls this before `npm test`.
#
#   bash scripts/ensure-tools.sh            all of them; the three system packages need root (or sudo) for apt-get
#   bash scripts/ensure-tools.sh --no-root  what needs no root: promtool and nginx into .tools/bin (with a package list of
#                                           its own under .tools/apt when the system has none); reports the
#                                           missing system tools and never fails. `npm test` runs this first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN="$ROOT/.tools/bin"
mkdir -p "$BIN"

NO_ROOT=0
if [ "${1:-}" = "--no-root" ]; then NO_ROOT=1; fi

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

# `apt-get install $1` quietly; after a failure (a stale package list), update the list once and try again loudly.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y -qq --no-install-recommends "$1" >/dev/null 2>&1; then
    apt_update_once
    $SUDO apt-get install -y -qq --no-install-recommends "$1"
  fi
}

# `apt-get download $2` into $1. It needs no root, but a package list: the system's, else (a fresh
# machine or image without one, where only root could refresh it) one of our own under .tools/apt.
download_deb() {
  if (cd "$1" && apt-get download "$2" >/dev/null 2>&1); then return 0; fi
  if [ "$NO_ROOT" -eq 0 ] && { [ "$(id -u)" -eq 0 ] || [ -n "$SUDO" ]; } && apt_update_once && (cd "$1" && apt-get download "$2"); then
    return 0
  fi
  local apt_dir="$ROOT/.tools/apt"
  local opts=(-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1")
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  say "apt-get update into .tools/apt (a package list of our own; no root needed)"
  apt-get -qq "${opts[@]}" update && (cd "$1" && apt-get "${opts[@]}" download "$2")
}

# ---- promtool ---------------------------------------------------------------------------------------------
ensure_promtool() {
  if [ -x "$BIN/promtool" ] && "$BIN/promtool" --version >/dev/null 2>&1; then
    say "promtool: already at .tools/bin/promtool ($("$BIN/promtool" --version 2>&1 | head -n1))"
  elif command -v promtool >/dev/null 2>&1; then
    ln -sf "$(command -v promtool)" "$BIN/promtool"
    say "promtool: found on PATH at $(command -v promtool); linked to .tools/bin/promtool"
  else
    if ! command -v apt-get >/dev/null 2>&1; then
      say "promtool: missing, and there is no apt-get to fetch Debian's prometheus package: put promtool (Prometheus 2.x) on PATH"
      return 1
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    download_deb "$tmp" prometheus || { say "promtool: could not download Debian's prometheus package"; return 1; }
    deb=$(ls "$tmp"/prometheus_*.deb | head -n1)
    dpkg-deb -x "$deb" "$tmp/x"
    cp "$tmp/x/usr/bin/promtool" "$BIN/promtool"
    chmod +x "$BIN/promtool"
    say "promtool: extracted from $(basename "$deb") to .tools/bin/promtool ($("$BIN/promtool" --version 2>&1 | head -n1))"
  fi
}

# ---- nginx (the compose stack's load balancer config is run for real by grafana/compose-run.test.ts) ----------
# Extracted from Debian's package like promtool (no root): installing it would start a system service on port 80.
ensure_nginx() {
  if [ -x "$BIN/nginx" ] && "$BIN/nginx" -v >/dev/null 2>&1; then
    say "nginx: already at .tools/bin/nginx ($("$BIN/nginx" -v 2>&1 | head -n1))"
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || { say "nginx: missing, and there is no apt-get to fetch Debian's nginx package"; return 1; }
  local ntmp
  ntmp=$(mktemp -d)
  download_deb "$ntmp" nginx || { rm -rf "$ntmp"; say "nginx: could not download Debian's nginx package"; return 1; }
  dpkg-deb -x "$(ls "$ntmp"/nginx_*.deb | head -n1)" "$ntmp/x"
  cp "$ntmp/x/usr/sbin/nginx" "$BIN/nginx"
  chmod +x "$BIN/nginx"
  rm -rf "$ntmp"
  say "nginx: extracted from Debian's package to .tools/bin/nginx ($("$BIN/nginx" -v 2>&1 | head -n1))"
}

if [ "$NO_ROOT" -eq 1 ]; then
  ensure_promtool || say "promtool: not provided; the tests that need it fail and say what to run"
  ensure_nginx || say "nginx: not provided; grafana/compose-run.test.ts fails and says what to run"
  missing=()
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v faketime >/dev/null 2>&1 || missing+=(faketime)
  command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-cli)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "missing: ${missing[*]}; the tests that need them fail. As root: bash scripts/ensure-tools.sh (redis-server and redis-cli: apt-get install redis-server)"
  fi
  exit 0
fi
ensure_promtool
ensure_nginx

# ---- docker-compose ---------------------------------------------------------------------------------------
if command -v docker-compose >/dev/null 2>&1; then
  say "docker-compose: already installed ($(docker-compose version --short 2>/dev/null || echo '?'))"
else
  apt_install docker-compose
  say "docker-compose: installed with apt-get ($(docker-compose version --short 2>/dev/null || echo '?'))"
fi

# ---- chromium (the waiting-room page's end-to-end test; Debian's build, never a downloaded one) -------------
if [ -x /usr/bin/chromium ]; then
  say "chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
else
  apt_install chromium
  say "chromium: installed with apt-get ($(/usr/bin/chromium --version 2>/dev/null | head -n1))"
fi

# ---- faketime (clock-skew fault tests run one API process under libfaketime; Debian's `faketime` package) ------
if command -v faketime >/dev/null 2>&1; then
  say "faketime: already installed ($(command -v faketime))"
else
  apt_install faketime
  say "faketime: installed with apt-get ($(command -v faketime))"
fi

# ---- pdftoppm (the web app's Chromium test draws the ticket PDF as a PNG to decode its QR code; Debian's poppler-utils)
if command -v pdftoppm >/dev/null 2>&1; then
  say "pdftoppm: already installed ($(command -v pdftoppm))"
else
  apt_install poppler-utils
  say "pdftoppm: installed with apt-get ($(command -v pdftoppm))"
fi

