#!/usr/bin/env bash
# The whole test suite: installs the test tools (scripts/setup.sh), then runs
# every unit, integration, interop, doc and fuzz-corpus test, checks that the
# benches (at smoke size) and fuzz targets still work, and checks the
# dependency tree's licenses, bans and sources with cargo-deny (deny.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# Disk: a CI run once failed on a full disk, so the log shows what was free
# before and after. A fresh clone builds everything once, so under CI=true
# cargo keeps no incremental caches (they only cost disk there).
disk() { df -h . "${TMPDIR:-/tmp}" | sed "s/^/[test] $1: /"; }
disk before
if [ "${CI:-}" = true ]; then export CARGO_INCREMENTAL=0; fi

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

# Publishable (Cargo.toml's `include`): the package holds what the build
# reads (include_str! of README.md and docs/client.md) and no tests, benches
# or fuzz corpora. `cargo package --no-verify` rather than `cargo publish
# --dry-run --no-verify`, which asks crates.io and so needs the network;
# `--allow-dirty` so a working tree with changes can run the suite.
packaged=$(cargo package --list --offline --allow-dirty 2>/dev/null)
for file in Cargo.toml src/lib.rs README.md docs/client.md LICENSE; do
  grep -qx "$file" <<<"$packaged" || { echo "[test] the package lacks $file" >&2; exit 1; }
done
if grep -E '^(tests|benches|fuzz|scripts)/|^docs/img/' <<<"$packaged"; then
  echo "[test] the package holds the files above (tests, benches, fuzz, scripts or bench output)" >&2
  exit 1
fi
cargo package --no-verify --offline --allow-dirty --quiet 2>&1 | { grep -v '^warning: ignoring' || true; }
# The fuzz targets build the way cargo-fuzz builds them: `--cfg fuzzing`
# makes `cipher::fuzzing` public (fuzz/ has its own workspace and lock
# file, seeded from the crate's).
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock
(cd fuzz && RUSTFLAGS="--cfg fuzzing" RUSTC_BOOTSTRAP=1 cargo check --quiet --bins)

# Tell the interop tests where the tools are; under CI=true they fail when one is missing.
export ZS_TEST_PYTHON="$PWD/.venv/bin/python"
export ZS_TEST_PY_CLI="$PWD/.venv/bin/zebrastream"
export ZS_TEST_SHARED="$(cd .. && pwd)/shared"
export CARGO_TERM_COLOR=never

cargo build --release --bin zebrastream
cargo test --lib --bins --tests --examples
cargo test --doc
# Every intra-doc link resolves (the public API is documented; broken links
# fail), built as docs.rs builds it (Cargo.toml's `package.metadata.docs.rs`:
# all features, `--cfg docsrs` for nightly's `doc_cfg`).
RUSTDOCFLAGS="--cfg docsrs -D warnings" RUSTC_BOOTSTRAP=1 cargo doc --no-deps --all-features --quiet
cargo bench --no-run
# Every bench binary once at smoke size (under a minute), so they keep working, not only compiling.
cargo test --release --benches

# The Python package (python/, docs/python.md; built into .venv by
# scripts/setup.sh): its pytest suite against our relay binary, then its
# bench once at smoke size so it keeps working. About 1 minute.
export ZS_TEST_ZEBRASTREAM="$PWD/target/release/zebrastream"
"$ZS_TEST_PYTHON" -m pytest -q -p no:cacheprovider python/tests
"$ZS_TEST_PYTHON" python/bench/bench.py --smoke

disk after
echo "[test] target/: $(du -sh target | cut -f1)"
