"""Ours <-> the official client (zebrastream-io 0.5.4) through our relay,
both ways, plaintext, age-rt and age, compared byte for byte; and the
official client's documented usage run with only its import line changed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import PASSPHRASE, Background, payload

import zebrastream_rs as zsfile

HERE = Path(__file__).resolve().parent
MODES = ["plain", "age-rt", "age"]


def official(role: str, relay, path: str, file: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "official_side.py"), role, relay.connect_url, path, str(file), mode, PASSPHRASE],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, f"the official client failed: {err}"


def keys(mode: str) -> dict:
    return {} if mode == "plain" else {"passphrase": PASSPHRASE}


@pytest.mark.parametrize("mode", MODES)
def test_ours_writes_official_reads(relay, endpoint, tmp_path, mode):
    data = payload(3 * 1024 * 1024 + 17)
    out = tmp_path / "received"
    reader = official("read", relay, endpoint["stream_path"], out, mode)
    extra = {} if mode == "plain" else {"encryption_mode": mode}
    with zsfile.open("wb", **endpoint, **keys(mode), **extra) as f:
        for i in range(0, len(data), 100_000):
            f.write(data[i : i + 100_000])
    finished(reader)
    assert out.read_bytes() == data


@pytest.mark.parametrize("mode", MODES)
def test_official_writes_ours_reads(relay, endpoint, tmp_path, mode):
    data = payload(3 * 1024 * 1024 + 5, seed=11)
    src = tmp_path / "source"
    src.write_bytes(data)
    writer = official("write", relay, endpoint["stream_path"], src, mode)
    received = bytearray()
    with zsfile.open("rb", **endpoint, **keys(mode)) as f:
        buffer = bytearray(200_000)
        while n := f.readinto(buffer):
            received += buffer[:n]
    finished(writer)
    assert bytes(received) == data


# The official client's documented usage (zebrastream.io.file.open's
# docstring: text write with timer auto-flush, instant flush, binary write
# with flush; sequential text read; random access for pandas), as a user
# writes it. IMPORT is the only line that differs between the two clients.
DOC_WRITER = """
{IMPORT}
import sys
url, path = sys.argv[1:3]
if path.endswith("/logs"):
    with zsfile.open(mode='w', stream_path=path, connect_api_url=url, auto_flush_delay=5) as f:
        for log_line in ['line one\\n', 'line two\\n']:
            f.write(log_line)
elif path.endswith("/alerts"):
    with zsfile.open(mode='w', stream_path=path, connect_api_url=url, auto_flush_delay=0) as f:
        f.write('CRITICAL: system down\\n')
else:
    import pandas as pd
    with zsfile.open(mode='wb', stream_path=path, connect_api_url=url) as f:
        pd.DataFrame({{'a': [1, 2, 3], 'b': ['x', 'y', 'z']}}).to_parquet(f)
        f.flush()
"""
DOC_READER = """
{IMPORT}
import sys
url, path = sys.argv[1:3]
if path.endswith("/data.parquet"):
    import pandas as pd
    with zsfile.open(mode='rb', random_read=True, stream_path=path, connect_api_url=url) as f:
        df = pd.read_parquet(f)
    print(df.to_csv(index=False), end='')
else:
    with zsfile.open(mode='r', stream_path=path, connect_api_url=url) as f:
        for line in f:
            print(line, end='')
"""
IMPORTS = {
    "official": "import zebrastream.io.file as zsfile",
    "ours": "import zebrastream_rs as zsfile",
}
EXPECTED = {
    "logs": "line one\nline two\n",
    "alerts": "CRITICAL: system down\n",
    "data.parquet": "a,b\n1,x\n2,y\n3,z\n",
}


def run_script(template: str, client: str, relay, path: str) -> subprocess.Popen:
    code = textwrap.dedent(template.format(IMPORT=IMPORTS[client]))
    return subprocess.Popen(
        [sys.executable, "-c", code, relay.connect_url, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("example", sorted(EXPECTED))
@pytest.mark.parametrize(("writer", "reader"), [("ours", "official"), ("official", "ours"), ("ours", "ours")])
def test_documented_usage_with_the_import_swapped(relay, stream_path, example, writer, reader):
    path = f"{stream_path}/{example}"
    w = run_script(DOC_WRITER, writer, relay, path)
    r = run_script(DOC_READER, reader, relay, path)
    out, err = r.communicate(timeout=120)
    w_out, w_err = w.communicate(timeout=120)
    assert w.returncode == 0, f"{writer} writer failed: {w_err}"
    assert r.returncode == 0, f"{reader} reader failed: {err}"
    assert out == EXPECTED[example]


def test_writer_in_a_thread_reader_here(endpoint):
    """Both ends in one process (the bench's setup), text mode."""
    lines = [f"row {i}\n" for i in range(10_000)]

    def write():
        with zsfile.open("w", **endpoint) as f:
            f.writelines(lines)

    side = Background(write)
    with zsfile.open("r", **endpoint) as f:
        got = list(f)
    side.result()
    assert got == lines
