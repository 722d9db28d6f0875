"""Throughput and peak memory of zebrastream-rs through our relay, against
the official client and against the Rust library, measured in one run.

    python python/bench/bench.py            # the figures of docs/performance.md ("Python package")
    python python/bench/bench.py --smoke    # small sizes, once (scripts/test.sh)

1. Writer and reader in one Python process (a writer thread, the reader in
   the main thread), 64 MiB, plaintext and age-rt, in writes and reads of
   64 KiB (the official CLI's size) and of 1 MiB: ours and the official
   client (zebrastream-io 0.5.4) measured the same way.
2. Writer and reader in two Python processes, 1 GiB, plaintext and age-rt,
   against the Rust library in the same two roles (the `zebrastream` CLI:
   `write FILE`, `read -o /dev/null`).

In one process, throughput counts from the reader's first byte to the
verified end (so the passphrase's scrypt, ~0.5 s per side in both clients,
is left out; the "open→close" column has it). In two processes it counts
from starting both to both exiting, for Python and Rust alike. Peak RSS per
process is ru_maxrss from wait4.
Every measurement runs in fresh processes; the best of --runs is shown.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from relay import Relay, relay_binary  # noqa: E402

PASSPHRASE = "bench passphrase 51d0"
BLOCK = 1024 * 1024
MiB = 1024 * 1024

# ---------------------------------------------------------------- the roles
# Each role runs in a child process: `bench.py ROLE CLIENT MODE SIZE URL PATH`
# and prints one JSON line: {"first": t, "end": t, "open": t} (time.time()).


def _module(client: str):
    if client == "ours":
        import zebrastream_rs

        return zebrastream_rs
    import zebrastream.io.file

    return zebrastream.io.file


def _writer_kwargs(mode: str, url: str, path: str) -> dict:
    kw = {"stream_path": path, "connect_api_url": url, "connect_timeout": 120}
    if mode != "plain":
        kw.update(passphrase=PASSPHRASE, encryption_mode=mode)
    return kw


def _reader_kwargs(mode: str, url: str, path: str) -> dict:
    kw = {"stream_path": path, "connect_api_url": url, "connect_timeout": 120}
    if mode != "plain":
        kw["passphrase"] = PASSPHRASE
    return kw


def _write(client: str, mode: str, size: int, block_size: int, url: str, path: str) -> None:
    block = os.urandom(block_size)
    zs = _module(client)
    with zs.open("wb", **_writer_kwargs(mode, url, path)) as f:
        left = size
        while left:
            n = min(left, block_size)
            f.write(block if n == block_size else block[:n])
            left -= n


def _read(client: str, mode: str, size: int, block_size: int, url: str, path: str) -> dict:
    zs = _module(client)
    opened = time.time()
    total = 0
    first = None
    with zs.open("rb", **_reader_kwargs(mode, url, path)) as f:
        if client == "ours":
            buffer = bytearray(block_size)
            while n := f.readinto(buffer):
                if first is None:
                    first = time.time()
                total += n
        else:
            while block := f.read(block_size):
                if first is None:
                    first = time.time()
                total += len(block)
    end = time.time()
    if total != size:
        raise SystemExit(f"read {total} bytes, expected {size}")
    return {"open": opened, "first": first, "end": end}


def role_main(argv: list[str]) -> None:
    role, client, mode, size, block_size, url, path = argv
    size, block_size = int(size), int(block_size)
    if role == "write":
        _write(client, mode, size, block_size, url, path)
        print(json.dumps({}))
    elif role == "read":
        print(json.dumps(_read(client, mode, size, block_size, url, path)))
    else:  # both ends in this process: the writer in a thread
        import threading

        errors = []

        def write():
            try:
                _write(client, mode, size, block_size, url, path)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        writer = threading.Thread(target=write)
        writer.start()
        times = _read(client, mode, size, block_size, url, path)
        writer.join()
        times["end"] = time.time()
        if errors:
            raise errors[0]
        print(json.dumps(times))


# ------------------------------------------------------------ measurements


def _spawn(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _finish(process: subprocess.Popen, what: str) -> tuple[str, int]:
    """Waits for the child; returns its stdout and peak RSS in KiB."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out, err = process.stdout.read(), process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"{what} failed ({process.returncode}): {err}")
    return out, usage.ru_maxrss


def _role(role: str, client: str, mode: str, size: int, block_size: int, relay: Relay, path: str) -> subprocess.Popen:
    args = [role, client, mode, str(size), str(block_size), relay.connect_url, path]
    return _spawn([sys.executable, __file__, *args])


def in_one_process(client: str, mode: str, size: int, block_size: int, relay: Relay) -> dict:
    path = f"/bench/{uuid.uuid4().hex}"
    started = time.time()
    out, rss = _finish(_role("both", client, mode, size, block_size, relay, path), f"{client} {mode}")
    times = json.loads(out)
    return {
        "rate": size / (times["end"] - times["first"]) / 1e6,
        "wall": times["end"] - started,
        "rss": {"process": rss},
    }


def python_processes(mode: str, size: int, relay: Relay) -> dict:
    path = f"/bench/{uuid.uuid4().hex}"
    started = time.time()
    reader = _role("read", "ours", mode, size, BLOCK, relay, path)
    writer = _role("write", "ours", mode, size, BLOCK, relay, path)
    _, writer_rss = _finish(writer, "python writer")
    out, reader_rss = _finish(reader, "python reader")
    json.loads(out)  # the reader checked the byte count
    return {"wall": time.time() - started, "rss": {"writer": writer_rss, "reader": reader_rss}}


def rust_processes(mode: str, size: int, relay: Relay, source: Path) -> dict:
    """The Rust library in the same two roles, through its CLI (the writer
    sends a file, which is in the page cache; the reader writes to
    /dev/null)."""
    path = f"/bench/{uuid.uuid4().hex}"
    env = {**os.environ, "ZEBRASTREAM_PASSPHRASE": PASSPHRASE}
    env.pop("ZEBRASTREAM_ACCESS_TOKEN", None)
    keys = ["--plain"] if mode == "plain" else []
    fmt = [] if mode == "plain" else ["--encryption-mode", mode]
    common = ["-s", path, "-U", relay.connect_url, "-t", "120", "-q"]
    binary = str(relay_binary())
    started = time.time()
    reader = _spawn([binary, "read", *common, *keys, "-o", "/dev/null"], env=env)
    writer = _spawn([binary, "write", *common, *keys, *fmt, str(source)], env=env)
    _, writer_rss = _finish(writer, "rust writer")
    _, reader_rss = _finish(reader, "rust reader")
    wall = time.time() - started
    return {"wall": wall, "rss": {"writer": writer_rss, "reader": reader_rss}}


def fastest(runs: int, measure, key: str = "wall") -> dict:
    """The best of `runs` measurements: the highest rate or the shortest wall time."""
    results = [measure() for _ in range(runs)]
    if key == "rate":
        return max(results, key=lambda r: r["rate"])
    return min(results, key=lambda r: r["wall"])


def rss_text(rss: dict) -> str:
    return ", ".join(f"{k} {v / 1024:.0f} MiB" for k, v in rss.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, one run (scripts/test.sh)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="plain,age-rt", help="comma-separated: plain, age-rt, age")
    parser.add_argument("--threads-size", type=int, default=64, help="MiB, writer and reader in one process")
    parser.add_argument("--processes-size", type=int, default=1024, help="MiB, writer and reader in two processes")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.threads_size, args.processes_size = 1, 4, 16
    relay = Relay()
    try:
        print(f"## writer and reader in one Python process (threads), {args.threads_size} MiB, best of {args.runs}\n")
        print(
            "| mode | write/read size | zebrastream-rs | official 0.5.4 | ratio "
            "| open→close (ours / official) | peak RSS (ours / official) |"
        )
        print("|---|---|---|---|---|---|---|")
        modes = args.modes.split(",")
        for mode in modes:
            for block_size in (64 * 1024, BLOCK):
                size = args.threads_size * MiB
                ours = fastest(args.runs, lambda: in_one_process("ours", mode, size, block_size, relay), "rate")
                theirs = fastest(args.runs, lambda: in_one_process("official", mode, size, block_size, relay), "rate")
                print(
                    f"| {mode} | {block_size // 1024} KiB | {ours['rate']:.0f} MB/s | {theirs['rate']:.0f} MB/s | {ours['rate'] / theirs['rate']:.1f}× "
                    f"| {ours['wall']:.2f} s / {theirs['wall']:.2f} s "
                    f"| {ours['rss']['process'] / 1024:.0f} / {theirs['rss']['process'] / 1024:.0f} MiB |"
                )
        size = args.processes_size * MiB
        print(f"\n## writer and reader in two processes, {args.processes_size} MiB, best of {args.runs}\n")
        print("| mode | zebrastream-rs (Python) | Rust library (CLI) | Python / Rust | peak RSS Python | peak RSS Rust |")
        print("|---|---|---|---|---|---|")
        with tempfile.NamedTemporaryFile(prefix="zs-bench-") as source:
            block = os.urandom(BLOCK)
            for _ in range(args.processes_size):
                source.write(block)
            source.flush()
            for mode in modes:
                # The same clock for both: from starting the two processes
                # to both exiting (interpreter start and scrypt included).
                python = fastest(args.runs, lambda: python_processes(mode, size, relay))
                rust = fastest(args.runs, lambda: rust_processes(mode, size, relay, Path(source.name)))
                python_rate = size / python["wall"] / 1e6
                rust_rate = size / rust["wall"] / 1e6
                print(
                    f"| {mode} | {python_rate:.0f} MB/s | {rust_rate:.0f} MB/s | {python_rate / rust_rate:.0%} "
                    f"| {rss_text(python['rss'])} | {rss_text(rust['rss'])} |"
                )
    finally:
        relay.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("write", "read", "both"):
        role_main(sys.argv[1:])
    else:
        main()
