#!/usr/bin/env bash
# Runs a bench binary with its external tools in place: installs the reference
# relay (npm piping-server@1.12.9) into $CARGO_TARGET_DIR/bench-tools (or
# target/bench-tools), raises the open-file limit, then `cargo bench --bench NAME`.
#
#   scripts/bench.sh                   # zs-bench, the whole suite (benches/suite)
#   scripts/bench.sh relay             # the relay bench (benches/relay.rs)
#   ZS_BENCH_PLOTS=docs/img scripts/bench.sh   # also write the SVG plots
#
# Sizes are environment variables, documented at the top of each bench file.
# The Python client comes from the venv that scripts/setup.sh creates (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH="${1:-suite}"
TOOLS="${CARGO_TARGET_DIR:-$PWD/target}/bench-tools"
if [ ! -x "$TOOLS/node_modules/.bin/piping-server" ]; then
  mkdir -p "$TOOLS"
  npm install --no-audit --no-fund --prefix "$TOOLS" piping-server@1.12.9 >&2
fi
export PIPING_SERVER="$TOOLS/node_modules/.bin/piping-server"
# 1,000 stream pairs or waiters plus their client sockets need file descriptors:
# raise the soft limit to the hard one.
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
exec cargo bench --bench "$BENCH"
