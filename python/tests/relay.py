"""Our relay as a child process: `zebrastream relay --open` on a free
loopback port, for the tests and the bench.

The binary is $ZS_TEST_ZEBRASTREAM, else target/release/zebrastream, else
target/debug/zebrastream of this checkout (scripts/test.sh builds the
release one first).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def relay_binary() -> Path:
    explicit = os.environ.get("ZS_TEST_ZEBRASTREAM")
    if explicit:
        return Path(explicit)
    for profile in ("release", "debug"):
        candidate = ROOT / "target" / profile / "zebrastream"
        if candidate.exists():
            return candidate
    raise RuntimeError("no zebrastream binary: run `cargo build --release --bin zebrastream` (or set ZS_TEST_ZEBRASTREAM)")


class Relay:
    """A running `zebrastream relay --open`."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            # A producer or consumer left alone fails in 30 s, not 300.
            [str(relay_binary()), "relay", "--open", "--listen", "127.0.0.1:0", "--data-wait", "30"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            found = re.search(r"relay listening on (\S+)", line)
            if found:
                self.address = found.group(1).removeprefix("http://")
                break
        else:
            raise RuntimeError(f"the relay did not start (exit {self.process.wait()})")
        # Keep draining its log so it never blocks on a full pipe.
        threading.Thread(target=self.process.stderr.read, daemon=True).start()
        self.connect_url = f"http://{self.address}/v0"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
