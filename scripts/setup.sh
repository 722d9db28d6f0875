#!/usr/bin/env bash
# Installs what the test suite needs, idempotently:
#   - a Python venv (.venv) with the official client zebrastream-io 0.5.4 and age-rt 0.2.2
#   - our Python package zebrastream-rs (python/) built into that venv with
#     maturin, plus pytest, pandas and pyarrow for its tests (pinned)
#   - Debian's `age`, curl, socat (benches), nginx (scale-out test), PostgreSQL
#     (the pg_dump/psql test), iproute2 and nftables (the network-path tests:
#     namespaces, veth, tc, packet loss; they run as root), and
#     libssl-dev + pkg-config (the default OpenSSL AEAD backend)
#   - `rage` 0.12.1 (cargo install, cached in ~/.cargo/bin)
#   - typage (npm `age-encryption` 0.3.1) for the interop tests
#     (tests/cipher_typage.rs), npm-installed into a cache folder that
#     survives between runs: $ZS_TYPAGE_DIR, default
#     ${XDG_CACHE_HOME:-$HOME/.cache}/zebrastream-test/typage
#   - the test age plugin `age-plugin-zstest` (tests/plugin/), built into
#     ${XDG_CACHE_HOME:-$HOME/.cache}/zebrastream-test/plugin-target
#   - `cargo-deny` 0.20.2 (cargo install, cached in ~/.cargo/bin; ~4 minutes of
#     compile on 2 cores the first time)
# Safe to run repeatedly; each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

# Debian packages.
need_apt=()
command -v age >/dev/null 2>&1 || need_apt+=(age)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v socat >/dev/null 2>&1 || need_apt+=(socat)
# OpenSSL headers and pkg-config: the default `openssl` AEAD backend links the
# system libcrypto.
[ -f /usr/include/openssl/evp.h ] || need_apt+=(libssl-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
# PostgreSQL: the pg_dump -> zebrastream -> psql test (tests/cli_postgres.rs)
# starts a throw-away cluster of its own; the package's service is not used.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_apt+=(postgresql)
# nginx: the load balancer of the scale-out test (deploy/nginx.conf).
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need_apt+=(nginx)
# iproute2 (`ip netns`, veth, `tc ... tbf`) and nftables (random packet loss):
# the network-path tests (tests/net_path.rs, tests/support/netns.rs).
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    sudo apt-get update -qq >/dev/null
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
fi

# Under CI a tool still missing after the install fails the run here, not as
# a skipped test later.
if [ "${CI:-}" = true ]; then
  for tool in age curl socat pkg-config ip tc nft; do
    command -v "$tool" >/dev/null 2>&1 || { log "missing after install: $tool"; exit 1; }
  done
fi

# Python venv with the pinned official client (its CLI is also called
# `zebrastream`: tests call it by its venv path, never via PATH).
VENV=.venv
PY_PINS=("zebrastream-io[cli]==0.5.4" "age-rt==0.2.2")
if ! "$VENV/bin/python" -c 'import importlib.metadata as m; assert m.version("zebrastream-io")=="0.5.4" and m.version("age-rt")=="0.2.2"' >/dev/null 2>&1; then
  log "creating $VENV with ${PY_PINS[*]}"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PINS[@]}"
fi

# The Python package zebrastream-rs (python/, docs/python.md): its build and
# test tools, pinned, in the same venv, then the package itself built into it
# with maturin (`develop --release`, an editable install of python/) whenever
# its sources or the library's changed (their hash is kept in the venv).
# Measured: 4 min 24 s cold on 2 shared cores; seconds after a change in python/src/.
PY_PACKAGE_PINS=("maturin==1.16.0" "pytest==9.2.0" "pandas==3.1.1" "pyarrow==26.0.1")
if ! "$VENV/bin/python" - "${PY_PACKAGE_PINS[@]}" >/dev/null 2>&1 <<'PY'
import importlib.metadata as m, sys
sys.exit(any(m.version(n) != v for n, v in (pin.split("==") for pin in sys.argv[1:])))
PY
then
  log "pip install ${PY_PACKAGE_PINS[*]} into $VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGE_PINS[@]}"
fi
py_package_hash=$(find Cargo.toml Cargo.lock src python/Cargo.toml python/pyproject.toml python/src -type f \
  \( -name '*.rs' -o -name '*.toml' -o -name Cargo.lock \) | LC_ALL=C sort | xargs cat | sha256sum | cut -d' ' -f1)
if [ "$(cat "$VENV/.zebrastream-rs.hash" 2>/dev/null)" != "$py_package_hash" ] \
    || ! "$VENV/bin/python" -c 'import zebrastream_rs' >/dev/null 2>&1; then
  log "building zebrastream-rs (python/) into $VENV with maturin (minutes the first time)"
  if (cd python && VIRTUAL_ENV="$PWD/../$VENV" "../$VENV/bin/maturin" develop --release --quiet >&2); then
    echo "$py_package_hash" > "$VENV/.zebrastream-rs.hash"
  elif [ "${CI:-}" = true ]; then
    log "zebrastream-rs: the maturin build failed"
    exit 1
  else
    log "zebrastream-rs: the maturin build failed; the Python package tests will fail"
  fi
fi

# rage, pinned.
RAGE_VERSION=0.12.1
if ! rage --version 2>/dev/null | grep -q "$RAGE_VERSION"; then
  log "cargo install rage $RAGE_VERSION (one-off, a few minutes)"
  cargo install rage --version "$RAGE_VERSION" --locked --quiet
fi

# typage, pinned, into a cache folder outside the checkout (the tests read
# ZS_TYPAGE_DIR or the same default). Needs node and npm; without them, or if
# the download fails, the typage tests skip locally, and under CI the run fails.
TYPAGE_VERSION=0.3.1
export ZS_TYPAGE_DIR="${ZS_TYPAGE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zebrastream-test/typage}"
typage_installed() {
  node -e 'process.exit(require(process.argv[1]).version === process.argv[2] ? 0 : 1)' \
    "$ZS_TYPAGE_DIR/node_modules/age-encryption/package.json" "$TYPAGE_VERSION" >/dev/null 2>&1
}
if ! typage_installed; then
  log "npm install age-encryption@$TYPAGE_VERSION into $ZS_TYPAGE_DIR"
  mkdir -p "$ZS_TYPAGE_DIR"
  if ! { command -v npm >/dev/null 2>&1 \
      && npm install --loglevel error --no-audit --no-fund --prefix "$ZS_TYPAGE_DIR" "age-encryption@$TYPAGE_VERSION" >&2 \
      && typage_installed; }; then
    if [ "${CI:-}" = true ]; then
      log "typage age-encryption@$TYPAGE_VERSION: install failed (needs node, npm and the npm registry)"
      exit 1
    fi
    log "typage age-encryption@$TYPAGE_VERSION: install failed; the typage tests will skip"
  fi
fi

# The test age plugin (tests/plugin/age-plugin-zstest, its own lock file),
# built into a cache folder outside the checkout for tests/cipher_plugin.rs
# (which builds it too when missing): about 40 s of compile the first time,
# a no-op after. A failed build fails the run.
ZS_PLUGIN_TARGET="${XDG_CACHE_HOME:-$HOME/.cache}/zebrastream-test/plugin-target"
if ! cargo build --quiet --locked --manifest-path tests/plugin/age-plugin-zstest/Cargo.toml \
    --target-dir "$ZS_PLUGIN_TARGET"; then
  log "building the test plugin age-plugin-zstest failed"
  exit 1
fi

# cargo-deny, pinned: licenses, bans and sources of the dependency tree (deny.toml).
CARGO_DENY_VERSION=0.20.2
if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
  log "cargo install cargo-deny $CARGO_DENY_VERSION (one-off, a few minutes)"
  cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --quiet
fi
log "ready: age $(age --version), $(rage --version), $(cargo deny --version), $("$VENV/bin/python" --version)"
