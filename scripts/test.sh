#!/usr/bin/env bash
# The whole test suite: installs the test tools (scripts/setup.sh), then runs
# every unit, integration, interop, doc and fuzz-corpus test, checks that the
# benches (at smoke size) and fuzz targets still work, and checks the
# dependency tree's licenses, bans and sources with cargo-deny (deny.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# Supply chain (deny.toml), first because it takes seconds. Advisories need
# the RustSec database from GitHub, so they are not checked here (see
# docs/reliability.md, "Supply chain").
if cargo deny --version >/dev/null 2>&1; then
  cargo deny check --hide-inclusion-graph bans licenses sources
elif [ "${CI:-}" = true ]; then
  echo "[test] cargo-deny is missing (CI=true): run scripts/setup.sh" >&2
  exit 1
else
  echo "[test] cargo-deny is missing: skipping the supply-chain check" >&2
fi

# Lean features (README.md, "Features"): a service that builds
# `--no-default-features --features client,ring` links none of the CLI's
# dependencies and no HTTP server. `no-proc-macro` and `normal` leave out
# what never reaches a dependent's binary: age's compile-time i18n macros
# (they use an old toml) and this crate's dev-dependencies (its tests run a
# hyper server).
lean=(--no-default-features --features client,ring)
cli_only=$(cargo tree -e normal,no-proc-macro "${lean[@]}" --prefix none \
  | sed 's/ .*//' | sort -u \
  | grep -xE 'clap|clap_complete|indicatif|rpassword|serde_yaml_ng|toml|tracing-subscriber' || true)
if [ -n "$cli_only" ]; then
  echo "[test] features client,ring pull in CLI dependencies: $cli_only" >&2
  exit 1
fi
if cargo tree -e normal,features -i hyper "${lean[@]}" | grep -q 'hyper feature "server"'; then
  echo "[test] features client,ring enable hyper's server feature (only relay may)" >&2
  exit 1
fi
for features in ring rustcrypto client,ring relay,ring; do
  cargo check --quiet --lib --no-default-features --features "$features"
done

# Tell the interop tests where the tools are; under CI=true they fail when one is missing.
export ZS_TEST_PYTHON="$PWD/.venv/bin/python"
export ZS_TEST_PY_CLI="$PWD/.venv/bin/zebrastream"
export ZS_TEST_SHARED="$(cd .. && pwd)/shared"
export CARGO_TERM_COLOR=never

cargo build --release --bin zebrastream
cargo test --lib --bins --tests --examples
cargo test --doc
# Every intra-doc link resolves (the public API is documented; broken links fail).
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
cargo bench --no-run
# Every bench binary once at smoke size (under a minute), so they keep working, not only compiling.
cargo test --release --benches
