#!/usr/bin/env bash
# Relay benchmark: our relay vs npm piping-server@1.12.9 vs a socat forwarder.
# Installs piping-server into $CARGO_TARGET_DIR/bench-tools (or target/bench-tools),
# then runs `cargo bench --bench relay`. Sizes: ZS_BENCH_BYTES, ZS_BENCH_ROUNDS,
# ZS_BENCH_WAITERS, ZS_BENCH_STREAMS, ZS_BENCH_STREAM_BYTES; parts: ZS_BENCH_ONLY=throughput,waiters,streams
# (see benches/relay.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${CARGO_TARGET_DIR:-$PWD/target}/bench-tools"
if [ ! -x "$TOOLS/node_modules/.bin/piping-server" ]; then
  mkdir -p "$TOOLS"
  npm install --no-audit --no-fund --prefix "$TOOLS" piping-server@1.12.9 >&2
fi
export PIPING_SERVER="$TOOLS/node_modules/.bin/piping-server"
# 1,000 waiters plus their client sockets need file descriptors.
ulimit -n 8192 2>/dev/null || true
exec cargo bench --bench relay
