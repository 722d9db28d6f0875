"""What the package adds to the official client's API: pandas and pyarrow
reading straight from a stream, X25519 recipients/identities and tickets,
age v1 output that `age` decrypts, and transfers that release the GIL."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import Background, payload, relay_binary

import zebrastream_rs as zsfile

pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402


def frame(rows: int):
    return pd.DataFrame({"id": range(rows), "value": [i * 0.5 for i in range(rows)], "label": [f"r{i % 97}" for i in range(rows)]})


def send(endpoint: dict, data: bytes, **keys) -> Background:
    def write():
        with zsfile.open("wb", **endpoint, **keys) as f:
            f.write(data)

    return Background(write)


def test_pandas_read_csv_straight_from_a_reader(endpoint):
    expected = frame(50_000)
    side = send(endpoint, expected.to_csv(index=False).encode(), passphrase="csv", encryption_mode="age-rt")
    with zsfile.open("rb", **endpoint, passphrase="csv") as f:
        got = pd.read_csv(f)
    side.result()
    pd.testing.assert_frame_equal(got, expected)


def test_pandas_read_csv_from_a_text_reader(endpoint):
    expected = frame(1000)
    side = send(endpoint, expected.to_csv(index=False).encode())
    with zsfile.open("r", **endpoint) as f:
        got = pd.read_csv(f)
    side.result()
    pd.testing.assert_frame_equal(got, expected)


def test_pyarrow_parquet_with_random_read(endpoint):
    """Parquet readers seek (the footer first): random_read=True buffers
    the stream into a temporary file, as the official client does."""
    table = pa.Table.from_pandas(frame(20_000), preserve_index=False)
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=5000)

    side = send(endpoint, sink.getvalue(), passphrase="pq", encryption_mode="age")
    with zsfile.open("rb", random_read=True, **endpoint, passphrase="pq") as f:
        assert f.seekable()
        got = pq.read_table(f)
    side.result()
    assert got.equals(table)


def test_pyarrow_writes_parquet_into_a_writer(endpoint):
    table = pa.Table.from_pandas(frame(3000), preserve_index=False)

    def write():
        with zsfile.open("wb", **endpoint) as f:
            pq.write_table(table, f)

    side = Background(write)
    with zsfile.open("rb", random_read=True, **endpoint) as f:
        got = pq.read_table(f)
    side.result()
    assert got.equals(table)


@pytest.fixture(scope="module")
def x25519_key(tmp_path_factory):
    keygen = shutil.which("age-keygen")
    if keygen is None:
        pytest.skip("age-keygen is not installed (scripts/setup.sh installs age)")
    key_file = tmp_path_factory.mktemp("keys") / "key.txt"
    subprocess.run([keygen, "-o", str(key_file)], check=True, capture_output=True)
    recipient = subprocess.run([keygen, "-y", str(key_file)], check=True, capture_output=True, text=True).stdout.strip()
    return key_file, recipient


@pytest.mark.parametrize("mode", ["age-rt", "age"])
def test_x25519_recipients_and_identities(endpoint, x25519_key, mode):
    key_file, recipient = x25519_key
    data = payload(1_000_000)
    side = send(endpoint, data, recipients=[recipient], encryption_mode=mode)
    # The identity as a file path, then as the key text itself.
    with zsfile.open("rb", **endpoint, identities=[key_file]) as f:
        assert f.read() == data
    side.result()

    secret = next(line for line in key_file.read_text().splitlines() if line.startswith("AGE-SECRET-KEY-"))
    side = send(endpoint, data, recipients=recipient, encryption_mode=mode)
    with zsfile.open("rb", **endpoint, identities=secret) as f:
        assert f.read() == data
    side.result()


def test_age_v1_output_decrypts_with_age(endpoint, x25519_key, tmp_path):
    """A reader without a key gets the ciphertext as the relay carries it;
    for encryption_mode="age" that is a standard age file."""
    key_file, recipient = x25519_key
    data = payload(200_000)
    side = send(endpoint, data, recipients=[recipient], encryption_mode="age")
    with zsfile.open("rb", **endpoint) as f:
        ciphertext = f.read()
    side.result()
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    age = shutil.which("age")
    if age is None:
        pytest.skip("age is not installed")
    out = subprocess.run([age, "-d", "-i", str(key_file)], input=ciphertext, capture_output=True, check=True)
    assert out.stdout == data


def test_a_key_reader_refuses_a_plaintext_stream(endpoint, x25519_key):
    key_file, _ = x25519_key
    side = send(endpoint, b"not encrypted")
    with pytest.raises(zsfile.DecryptionError, match="not encrypted"):
        with zsfile.open("rb", **endpoint, identities=[key_file]) as f:
            f.read()
    with contextlib.suppress(OSError):  # the writer may see the reader leave
        side.result()


def new_ticket(relay, prefix):
    return subprocess.run(
        [str(relay_binary()), "ticket", "new", "--relay", relay.connect_url, "--path", prefix],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.mark.parametrize("forward_secrecy", [True, False])
def test_a_ticket_addresses_and_keys_the_stream(relay, forward_secrecy):
    ticket = new_ticket(relay, "/pytest/tickets")
    assert ticket.startswith("zs1")
    data = payload(300_000)
    side = send({"ticket": ticket, "connect_timeout": 60, "forward_secrecy": forward_secrecy}, data)
    with zsfile.open("rb", ticket=ticket, connect_timeout=60, forward_secrecy=forward_secrecy) as f:
        assert f.name.startswith("/pytest/tickets/")
        assert f.read() == data
    side.result()


def test_a_ticket_resumes_by_default_with_the_cli_writer(relay):
    """The CLI turns resume on by default with a ticket, so the Python
    reader does too: it answers the writer's handshake and, on close(),
    sends the receipt the writer's exit 0 waits for (without it the writer
    fails: "the reader did not answer the resume handshake")."""
    ticket = new_ticket(relay, "/pytest/resume")
    data = payload(3_000_000)
    writer = subprocess.Popen(
        [str(relay_binary()), "-q", "write", "--ticket", ticket, "-t", "20"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    feeding = Background(lambda: writer.communicate(data))
    with zsfile.open("rb", ticket=ticket, connect_timeout=60) as f:
        assert f.read() == data
    _, stderr = feeding.result()
    assert writer.returncode == 0, stderr.decode()


def test_an_exception_in_the_readers_with_block_fails_the_writer_at_once(relay):
    """With resume, a reader whose program failed after reading everything
    tells the writer, whose close() raises BrokenPipeError at once (not
    after the 60 s resume timeout): nothing was committed."""
    ticket = new_ticket(relay, "/pytest/resume")
    data = payload(300_000)
    side = send({"ticket": ticket, "connect_timeout": 60}, data)
    with pytest.raises(RuntimeError):
        with zsfile.open("rb", ticket=ticket, connect_timeout=60) as f:
            assert f.read() == data
            raise RuntimeError("the database rejected the rows")
    started = time.monotonic()
    with pytest.raises(BrokenPipeError, match="gave the stream up"):
        side.result()
    assert time.monotonic() - started < 20


def test_an_exception_in_the_writers_with_block_fails_the_reader_at_once(relay):
    """With resume, a writer whose program failed tells the reader, which
    raises TruncatedError at once instead of trying to resume for 60 s."""
    ticket = new_ticket(relay, "/pytest/resume")

    def write():
        with zsfile.open("wb", ticket=ticket, connect_timeout=60) as f:
            f.write(payload(3_000_000))
            f.flush()
            time.sleep(0.5)
            raise RuntimeError("the export failed")

    side = Background(write)
    started = time.monotonic()
    with pytest.raises(zsfile.TruncatedError, match="writer gave the stream up"):
        with zsfile.open("rb", ticket=ticket, connect_timeout=60) as f:
            f.read()
    assert time.monotonic() - started < 20
    with pytest.raises(RuntimeError):
        side.result()


def test_resume_settings_are_keywords(relay):
    """resume_timeout reaches the library: a writer whose reader has resume
    off (so it never answers the handshake) fails after the 2 s it was
    given, not the default 60 s."""
    ticket = new_ticket(relay, "/pytest/resume")
    data = payload(300_000)
    side = send({"ticket": ticket, "connect_timeout": 60, "resume_timeout": 2, "resume_buffer": 1 << 20}, data)
    with zsfile.open("rb", ticket=ticket, connect_timeout=60, resume=False) as f:
        assert f.read() == data
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake"):
        side.result()
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"resume_buffer": 1000}, "resume buffer .* at least one chunk"),
        ({"resume_buffer": -1}, "resume_buffer must be a size"),
        ({"stall_timeout": 0}, "stall_timeout must be a number of seconds > 0"),
        ({"resume_timeout": -5}, "resume_timeout must be a number of seconds > 0"),
        ({"resume_timeout": float("nan")}, "resume_timeout must be"),
        ({"resume": False, "stall_timeout": 5}, "stall_timeout is a resume setting, and resume is off"),
    ],
)
def test_resume_settings_that_cannot_work_are_value_errors(relay, keywords, message):
    ticket = new_ticket(relay, "/pytest/resume")
    for mode in ("rb", "wb"):
        with pytest.raises(ValueError, match=message):
            zsfile.open(mode, ticket=ticket, connect_timeout=1, **keywords)
    with pytest.raises(ValueError, match="resume is off"):
        zsfile.open("wb", stream_path="/pytest/plain", connect_api_url=relay.connect_url, resume_buffer=1 << 20)


GIL_SCRIPT = """
import sys, threading
import zebrastream_rs as zsfile
url, path = sys.argv[1:3]
kw = dict(stream_path=path, connect_api_url=url, connect_timeout=60)
data = bytes(range(256)) * (128 * 1024)  # 32 MiB: more than every buffer between the ends

ticks = 0
stop = threading.Event()
def spin():
    global ticks
    while not stop.is_set():
        ticks += 1
threading.Thread(target=spin, daemon=True).start()

during = {}
def write():
    with zsfile.open("wb", **kw) as f:
        before = ticks
        f.write(data)  # one call: it returns only once the reader took most of it
        during["write"] = ticks - before

writer = threading.Thread(target=write)
writer.start()
reader = zsfile.open("rb", **kw)
before = ticks
got = reader.read()  # one call: the writer thread's Python code must run meanwhile
during["read"] = ticks - before
reader.close()
writer.join()
stop.set()
assert got == data, "payload mismatch"
print(during["write"], during["read"])
"""


def test_transfers_release_the_gil(relay, stream_path):
    """One write() of 32 MiB and one read() of the whole stream, in two
    threads of one process: each call can only finish if the other
    thread's Python code runs while it waits (else the process deadlocks
    and the timeout fails the test), and a third, pure-Python thread keeps
    counting during each call."""
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(GIL_SCRIPT), relay.connect_url, stream_path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert process.returncode == 0, process.stderr
    during_write, during_read = map(int, process.stdout.split())
    assert during_write > 0 and during_read > 0, process.stdout
