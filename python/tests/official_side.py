"""One end of a stream through the official client (`zebrastream.io.file`),
run by the tests in a process of its own:

    python official_side.py write|read CONNECT_URL STREAM_PATH FILE plain|age-rt|age PASSPHRASE

`write` streams FILE; `read` stores the stream in FILE.
"""

import sys

import zebrastream.io.file as zf

role, url, path, file_name, mode, passphrase = sys.argv[1:7]
kw = dict(stream_path=path, connect_api_url=url, connect_timeout=60)
if mode != "plain":
    kw["passphrase"] = passphrase
if role == "write":
    if mode != "plain":
        kw["encryption_mode"] = mode
    with open(file_name, "rb") as src, zf.open("wb", **kw) as out:
        while block := src.read(65536):
            out.write(block)
else:
    with zf.open("rb", **kw) as inp, open(file_name, "wb") as dst:
        while block := inp.read(65536):
            dst.write(block)
