#!/usr/bin/env python3
"""Idle-connection cost of a relay binary: opens N h2c connections from one
address that send the HTTP/2 preface and an empty SETTINGS frame and then
nothing (an idle h2c client), and reports the relay's descriptors and RSS
before and after, and how many connections it still holds.

    scripts/bench-idle.py BINARY [N] [-- extra relay flags]
    scripts/bench-idle.py target/release/zebrastream 3000
    scripts/bench-idle.py target/release/zebrastream 3000 -- --max-connections-per-ip 100000

Needs `ulimit -n` above N (client side) and Linux /proc.
"""
import os
import socket
import subprocess
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def usage(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as status:
        rss = next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
    return fds, rss


def still_open(sock):
    """Whether the relay has not closed `sock` (what it sent is read first)."""
    sock.setblocking(False)
    while True:
        try:
            if sock.recv(65536) == b"":
                return False
        except BlockingIOError:
            return True
        except OSError:
            return False


def main():
    args = sys.argv[1:]
    extra = []
    if "--" in args:
        extra = args[args.index("--") + 1 :]
        args = args[: args.index("--")]
    binary, n = args[0], int(args[1]) if len(args) > 1 else 3000
    relay = subprocess.Popen(
        [binary, "relay", "--open", "--listen", "127.0.0.1:0", *extra],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in relay.stderr:
            if "relay listening on " in line:
                host, port = line.split("relay listening on ")[1].split()[0].rsplit(":", 1)
                break
        time.sleep(0.5)
        fds0, rss0 = usage(relay.pid)
        conns = []
        for _ in range(n):
            s = socket.create_connection((host, int(port)))
            try:
                s.sendall(PREFACE)
            except OSError:
                pass
            conns.append(s)
        time.sleep(2)
        fds1, rss1 = usage(relay.pid)
        open_ = sum(still_open(s) for s in conns)
        print(
            f"{n} idle h2c connections: relay fds {fds0} -> {fds1}, "
            f"RSS {rss0 / 1024:.1f} -> {rss1 / 1024:.1f} MiB, "
            f"still open {open_}"
        )
    finally:
        relay.kill()
        relay.wait()


if __name__ == "__main__":
    main()
