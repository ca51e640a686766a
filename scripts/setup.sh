#!/usr/bin/env bash
# Installs what dispatch needs, skipping what is already there:
#   npm deps (node_modules), the pinned Temporal CLI, and with --test Debian's openssh-server, shellcheck,
#   PostgreSQL and openssl, and the pinned Temporal server and sql tool (for test/cluster).
# Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

say() { printf '[setup] %s\n' "$*"; }

# 1. Temporal CLI: the last tag without a replace directive, so `go install` works.
TEMPORAL_VERSION=v1.5.1
gobin="$(go env GOPATH 2>/dev/null)/bin"
if command -v temporal >/dev/null 2>&1; then
  say "temporal CLI: $(command -v temporal)"
elif [ -x "$gobin/temporal" ]; then
  say "temporal CLI: $gobin/temporal"
else
  command -v go >/dev/null 2>&1 || { echo "[setup] go is needed to install the Temporal CLI (go install)"; exit 1; }
  say "installing temporal CLI $TEMPORAL_VERSION with go install (a few minutes the first time)"
  if ! go install "github.com/temporalio/cli/cmd/temporal@${TEMPORAL_VERSION}"; then
    echo "[setup] go install of the Temporal CLI failed: check GOPROXY ($(go env GOPROXY)) and GOSUMDB ($(go env GOSUMDB))" >&2
    exit 1
  fi
  "$gobin/temporal" --version >/dev/null
  say "temporal CLI installed: $gobin/temporal"
fi

# 2. npm dependencies. better-sqlite3 compiles against the local Node headers when they exist.
if [ -d /usr/include/node ] && [ -z "${npm_config_nodedir:-}" ]; then export npm_config_nodedir=/usr; fi
if [ ! -d node_modules/@temporalio/worker ] || [ ! -d node_modules/better-sqlite3 ] \
   || ! node -e "require('better-sqlite3')(':memory:')" >/dev/null 2>&1; then
  say "installing npm dependencies"
  npm install --no-audit --no-fund
  # npm 11 skips install scripts not listed in allowScripts; make sure the native module is built.
  node -e "require('better-sqlite3')(':memory:')" >/dev/null 2>&1 || npm rebuild better-sqlite3
  node -e "require('better-sqlite3')(':memory:')"
else
  say "npm dependencies: present"
fi

# Debian packages, with sudo unless root; the package list is refreshed first.
apt_install() {
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# 3. With --test: sshd for the end-to-end tests (each test starts its own sshd processes on 127.0.0.1),
#    and shellcheck.
if [ "$want_test" = 1 ]; then
  if [ -x /usr/sbin/sshd ] && command -v ssh-keygen >/dev/null 2>&1; then
    say "sshd: /usr/sbin/sshd"
  else
    say "installing openssh-server (Debian)"
    apt_install openssh-server openssh-client
  fi
  mkdir -p /run/sshd 2>/dev/null || true
  # The unit tests lint the node scripts (src/shell/scripts/*.sh) with shellcheck.
  if command -v shellcheck >/dev/null 2>&1; then
    say "shellcheck: $(command -v shellcheck)"
  else
    say "installing shellcheck (Debian)"
    apt_install shellcheck
  fi
  # The cluster tests (test/cluster): Debian's PostgreSQL and openssl, and the Temporal server and
  # sql tool built with go install (scripts/temporal-cluster.sh build; skipped when present).
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v openssl >/dev/null 2>&1; then
    say "postgresql: present"
  else
    say "installing postgresql and openssl (Debian)"
    apt_install postgresql openssl
  fi
  bash scripts/temporal-cluster.sh build
  # The Web UI test (test/e2e/webui.test.ts): Debian's chromium, driven by playwright-core through
  # its executablePath (a browser download cannot work on these machines).
  if command -v chromium >/dev/null 2>&1; then
    say "chromium: present"
  else
    say "installing chromium (Debian)"
    apt_install --no-install-recommends chromium
  fi
fi
say "ready"
