"""Drives the official client's Python API (zebrastream.io.file) for tests/relay_python.rs.

usage: zs_api.py write|read|write-until-error CONNECT_URL STREAM_PATH [PASSPHRASE [ENCRYPTION_MODE]]
write: stdin -> stream; read: stream -> stdout; write-until-error: writes 64 KiB
blocks (each one sent at once) until the client raises, then prints the exception and its cause.
"""
import shutil
import sys
import time

from zebrastream.io import file as zsfile

action, url, path = sys.argv[1:4]
passphrase = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
kwargs = dict(stream_path=path, access_token="test-token", connect_api_url=url)
if passphrase:
    kwargs["passphrase"] = passphrase

if action == "write":
    if passphrase:
        kwargs["encryption_mode"] = sys.argv[5]
    # Open first (that is when the client reaches the relay), then stream stdin.
    with zsfile.open("wb", **kwargs) as f:
        shutil.copyfileobj(sys.stdin.buffer, f, 65536)
elif action == "read":
    with zsfile.open("rb", **kwargs) as f:
        sys.stdout.buffer.write(f.read())
elif action == "write-until-error":
    try:
        with zsfile.open("wb", auto_flush_delay=0, **kwargs) as f:
            # No f.flush(): zebrastream-io 0.5.4's flush can wait forever
            # when its upload task fails between a write and the flush
            # (AsyncByteBuffer.drain() clears the event close() had set).
            # A 64 KiB write fills the write buffer, so it goes out at once,
            # and the next write raises the upload's error.
            for _ in range(3000):
                f.write(b"x" * 65536)
                time.sleep(0.01)
        print("NO ERROR")
    except BaseException as e:  # report whatever the client raised
        print(f"{type(e).__name__}: {e} | cause: {e.__cause__!r}")
else:
    sys.exit(f"unknown action {action}")
