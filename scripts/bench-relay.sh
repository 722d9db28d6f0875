#!/usr/bin/env bash
# Relay benchmark: our relay vs npm piping-server@1.12.9 vs a socat forwarder.
# Sizes: ZS_BENCH_BYTES, ZS_BENCH_ROUNDS, ZS_BENCH_WAITERS, ZS_BENCH_STREAMS,
# ZS_BENCH_STREAM_BYTES; parts: ZS_BENCH_ONLY=throughput,waiters,streams
# (see benches/relay.rs). Same as `scripts/bench.sh relay`.
exec "$(dirname "$0")/bench.sh" relay
