#!/usr/bin/env bash
# The whole test suite: installs the test tools (scripts/setup.sh), then runs
# every unit, integration, interop, doc and fuzz-corpus test, and checks that
# the benches (at smoke size) and fuzz targets still work.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh

# Tell the interop tests where the tools are; under CI=true they fail when one is missing.
export ZS_TEST_PYTHON="$PWD/.venv/bin/python"
export ZS_TEST_PY_CLI="$PWD/.venv/bin/zebrastream"
export ZS_TEST_SHARED="$(cd .. && pwd)/shared"
export CARGO_TERM_COLOR=never

cargo build --release --bin zebrastream
cargo test --lib --bins --tests --examples
cargo test --doc
cargo bench --no-run
# Every bench binary once at smoke size (under a minute), so they keep working, not only compiling.
cargo test --release --benches
