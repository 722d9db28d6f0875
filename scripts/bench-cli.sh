#!/usr/bin/env bash
# The CLI through pipes, the way shell users run it:
#   head -c N /dev/zero | zebrastream write … → zebrastream relay → zebrastream read … > /dev/null
# plaintext and age-rt (X25519), on loopback, with /usr/bin/time's CPU and peak RSS per client.
#
#   scripts/bench-cli.sh            # 1024 MiB each
#   ZS_BENCH_MIB=256 scripts/bench-cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${ZS_BENCH_MIB:-1024}"
cargo build --release --quiet
BIN="$PWD/target/release/zebrastream"
WORK="$(mktemp -d)"
trap 'kill "$RELAY" 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
"$BIN" relay --listen "127.0.0.1:$PORT" --open >/dev/null 2>&1 &
RELAY=$!
sleep 0.5
"$BIN" keygen -o "$WORK/key.txt" >/dev/null 2>&1
RECIPIENT=$(grep -o 'age1[0-9a-z]*' "$WORK/key.txt" | head -1)
URL="http://127.0.0.1:$PORT/v0"
TIME="/usr/bin/time"
for mode in plain age-rt; do
  if [ "$mode" = plain ]; then W=(--plain); R=(--plain); else W=(-r "$RECIPIENT"); R=(-i "$WORK/key.txt"); fi
  start=$(date +%s.%N)
  "$TIME" -f "  reader: %U s user, %S s system, %M KiB peak RSS" -o "$WORK/r.time" \
    "$BIN" read -q -U "$URL" -s "/bench/$mode" "${R[@]}" >/dev/null &
  READER=$!
  head -c "${MIB}M" /dev/zero |
    "$TIME" -f "  writer: %U s user, %S s system, %M KiB peak RSS" -o "$WORK/w.time" \
      "$BIN" write -q -U "$URL" -s "/bench/$mode" "${W[@]}"
  wait "$READER"
  end=$(date +%s.%N)
  printf '%-7s %s MiB in %.2f s: %.0f MiB/s\n' "$mode" "$MIB" "$(echo "$end - $start" | bc -l)" \
    "$(echo "$MIB / ($end - $start)" | bc -l)"
  cat "$WORK/w.time" "$WORK/r.time"
done
