"""What a failed transfer raises: the official client's exception types
(protocol.md §5.4) and our own TruncatedError / DecryptionError, never a
stream that looks complete when it is not."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import PASSPHRASE, Background, payload

import zebrastream_rs as zsfile

ENCRYPTION = [{}, {"passphrase": PASSPHRASE, "encryption_mode": "age-rt"}, {"passphrase": PASSPHRASE, "encryption_mode": "age"}]
IDS = ["plain", "age-rt", "age"]


def reader_keys(writer_keys: dict) -> dict:
    return {"passphrase": writer_keys["passphrase"]} if writer_keys else {}


def read_all(f) -> bytes:
    out = bytearray()
    while block := f.read(65536):
        out += block
    return bytes(out)


def test_an_exception_in_a_text_writer_block_aborts(endpoint):
    first_line_arrived = threading.Event()

    def write():
        with pytest.raises(KeyError), zsfile.open("w", **endpoint) as f:
            f.write("header\n")
            f.flush()
            first_line_arrived.wait(60)
            raise KeyError("a missing column")

    side = Background(write)
    with zsfile.open("r", **endpoint) as f:
        assert f.readline() == "header\n"
        first_line_arrived.set()
        with pytest.raises(zsfile.TruncatedError):
            f.read()
    side.result()


@pytest.mark.parametrize("keys", ENCRYPTION, ids=IDS)
def test_an_aborted_writer_is_a_truncation_error(endpoint, keys):
    """The writer leaves its `with` block by an exception: the reader gets
    what was sent, then TruncatedError (an OSError), never a clean end."""

    first_bytes_arrived = threading.Event()

    def write():
        with pytest.raises(RuntimeError), zsfile.open("wb", **endpoint, **keys) as f:
            f.write(payload(200_000))
            f.flush()
            first_bytes_arrived.wait(60)
            raise RuntimeError("the producer failed")

    side = Background(write)
    with zsfile.open("rb", **endpoint, **reader_keys(keys)) as f:
        assert len(f.read(1)) == 1
        first_bytes_arrived.set()
        with pytest.raises(zsfile.TruncatedError) as caught:
            read_all(f)
    side.result()
    assert isinstance(caught.value, OSError)
    assert "truncated" in str(caught.value)


@pytest.mark.parametrize("keys", ENCRYPTION, ids=IDS)
def test_a_killed_writer_process_is_a_truncation_error(relay, endpoint, keys):
    """SIGKILL mid-stream: no clean end can reach the reader."""
    code = textwrap.dedent(
        """
        import sys, time, json
        import zebrastream_rs as zsfile
        kw = json.loads(sys.argv[1])
        f = zsfile.open("wb", **kw)
        f.write(b"x" * 300_000)
        f.flush()
        print("sent", flush=True)
        time.sleep(600)
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", code, json.dumps({**endpoint, **keys})], stdout=subprocess.PIPE, text=True)
    try:
        with zsfile.open("rb", **endpoint, **reader_keys(keys)) as f:
            assert writer.stdout.readline() == "sent\n"
            got = f.read(1)
            assert got == b"x"
            os.kill(writer.pid, signal.SIGKILL)
            with pytest.raises(zsfile.TruncatedError):
                read_all(f)
    finally:
        writer.kill()
        writer.wait()


@pytest.mark.parametrize("mode", ["wb", "w"])
def test_a_writer_dropped_without_close_aborts(endpoint, mode):
    """Garbage collection of an unclosed writer, binary or text, must not
    end the stream as if it were complete (the official client would flush
    and finish)."""

    first_bytes_arrived = threading.Event()

    def write():
        f = zsfile.open(mode, **endpoint)
        f.write(b"partial" if mode == "wb" else "partial")
        f.flush()
        first_bytes_arrived.wait(60)
        del f
        gc.collect()

    side = Background(write)
    with zsfile.open("rb", **endpoint) as f:
        assert f.read(1) == b"p"
        first_bytes_arrived.set()
        with pytest.raises(zsfile.TruncatedError):
            read_all(f)
    side.result()


@pytest.mark.parametrize("mode", ["age-rt", "age"])
def test_a_wrong_passphrase_raises_decryption_error(endpoint, mode):
    def write():
        # Whether the relay delivered the few bytes before the reader left
        # decides how the writer ends; only the reader's error is checked.
        with contextlib.suppress(OSError), zsfile.open("wb", **endpoint, passphrase=PASSPHRASE, encryption_mode=mode) as f:
            f.write(b"secret")

    side = Background(write)
    with pytest.raises(zsfile.DecryptionError) as caught:
        with zsfile.open("rb", **endpoint, passphrase="not the passphrase") as f:
            f.read()
    side.result()
    assert "wrong passphrase" in str(caught.value)
    assert isinstance(caught.value, OSError)


def test_a_reader_that_left_is_a_broken_pipe_for_the_writer(endpoint):
    """The reader stops after one block: the writer's write or close raises
    BrokenPipeError ("peer disconnected"), never a silent success."""

    def read_one():
        with zsfile.open("rb", **endpoint) as f:
            f.read(1)
            f.abort()

    side = Background(read_one)
    with pytest.raises(BrokenPipeError, match="peer disconnected"):
        with zsfile.open("wb", **endpoint) as f:
            for _ in range(2000):
                f.write(b"y" * 65536)
    side.result()


def test_no_peer_within_connect_timeout_is_timeout_error(endpoint):
    with pytest.raises(TimeoutError, match="open failed"):
        zsfile.open("rb", **{**endpoint, "connect_timeout": 1})


def test_a_closed_relay_is_os_error(stream_path):
    with pytest.raises(OSError, match="open failed") as caught:
        zsfile.open("wb", stream_path=stream_path, connect_api_url="http://127.0.0.1:9/v0", connect_timeout=5)
    assert not isinstance(caught.value, TimeoutError)


def test_reading_stops_before_the_end_fails_on_close(endpoint):
    """As the official client: closing a reader that never saw the end is
    OSError("close failed: EOF not consumed")."""

    def write():
        # The writer fails once the relay finds the reader gone; until then
        # the sockets on the way take what it writes (their buffers grow to
        # tens of MiB on loopback: a fixed 5 MiB once fitted, and the
        # writer then succeeded).
        block = payload(1024 * 1024)
        with pytest.raises(OSError), zsfile.open("wb", **endpoint) as f:
            for _ in range(1024):
                f.write(block)

    side = Background(write)
    f = zsfile.open("rb", **endpoint)
    f.read(10)
    with pytest.raises(OSError, match="EOF not consumed"):
        f.close()
    side.result()


@pytest.mark.parametrize(
    ("mode", "kwargs", "message"),
    [
        ("x", {}, "Unsupported mode"),
        ("wb", {"random_read": True}, "random_read=True only supported for read modes"),
        ("wb", {"passphrase": "p"}, "encryption_mode must be specified when passphrase is set"),
        ("wb", {"passphrase": "p", "encryption_mode": "rot13"}, "encryption_mode must be 'age-rt' or 'age'"),
        ("wb", {"auto_flush_delay": -1}, "auto_flush_delay must be >= 0"),
        ("wb", {"transfer_buffer_multiplier": 0}, "transfer_buffer_multiplier must be >= 1"),
        ("wb", {"stream_path": "no-slash"}, "stream path"),
        ("rb", {"stream_path": None}, "stream_path is required"),
        ("wb", {"recipients": ["age1notakey"]}, "recipients"),
        ("rb", {"identities": ["AGE-SECRET-KEY-1NOTAKEY"]}, "identities"),
        ("rb", {"ticket": "zs1broken", "stream_path": None}, "ticket"),
    ],
)
def test_bad_settings_are_value_errors(endpoint, mode, kwargs, message):
    with pytest.raises(ValueError, match=message):
        zsfile.open(mode, **{**endpoint, **kwargs})


def test_closed_file_operations_are_value_errors(endpoint):
    side = Background(lambda: zsfile.open("rb", **endpoint).read())
    f = zsfile.open("wb", **endpoint)
    f.write(b"done")
    f.close()
    assert side.result() == b"done"
    assert f.closed
    with pytest.raises(ValueError, match="I/O operation on closed file"):
        f.write(b"more")


INTERRUPTED_READER = """
import sys, json
import zebrastream_rs as zsfile
kw = json.loads(sys.argv[1])
print("opening", flush=True)
with zsfile.open("rb", **kw) as f:
    print("got", f.read(5).decode(), flush=True)
    f.read(5)  # the writer sends nothing more: this waits until interrupted
"""


@pytest.mark.parametrize("wait", ["for the writer", "for data"])
def test_ctrl_c_interrupts_a_waiting_call(endpoint, wait):
    """SIGINT (Ctrl-C) reaches Python while a call waits in the Rust core:
    it raises KeyboardInterrupt instead of waiting on (without the signal
    check the process would wait for the relay and the timeout here fails
    the test)."""
    endpoint = {**endpoint, "connect_timeout": 600}
    reader = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_READER, json.dumps(endpoint)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    writer = None
    try:
        assert reader.stdout.readline() == "opening\n"
        if wait == "for data":
            writer = zsfile.open("wb", **endpoint)
            writer.write(b"first")
            writer.flush()
            assert reader.stdout.readline() == "got first\n"
        time.sleep(1)  # into the waiting call
        reader.send_signal(signal.SIGINT)
        _, err = reader.communicate(timeout=30)
    finally:
        reader.kill()
        reader.wait()
        if writer is not None:
            writer.abort()
    assert reader.returncode != 0
    assert "KeyboardInterrupt" in err, err
