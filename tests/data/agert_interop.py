"""Helper for tests/cipher_python.rs: runs the official age-rt 0.2.2 encoder
and decoder on files in a directory.

  encode DIR   reads DIR/cases.json, a list of
               {"name", "format": "age-rt"|"age", "chunks": [sizes], "final": size|null}
               and writes DIR/<name>.plain and DIR/<name>.enc. age-rt: each size is one
               encode_chunk call; "final" is the size of a non-empty final chunk, else the
               stream ends with an empty final chunk (what the official writer does).
               age: the plaintext (sum of sizes) goes through iter_encode_chunks in 64 KiB
               pieces, as zebrastream-io 0.5.4 does with encryption_mode="age".
               One scrypt run per format: later streams of a format reuse its header
               and file key (each stream still gets a fresh payload nonce).
  decode DIR NAME...
               decodes DIR/<NAME>.enc with AgeAutoDecoder and writes DIR/<NAME>.out,
               or DIR/<NAME>.err holding the exception class name.

The passphrase comes from the environment variable ZS_PASSPHRASE.
"""
import json
import os
import sys

import age_rt


def encode(directory):
    passphrase = os.environ["ZS_PASSPHRASE"]
    with open(os.path.join(directory, "cases.json")) as f:
        cases = json.load(f)
    templates = {}
    for case in cases:
        fmt = case["format"]
        if fmt not in templates:
            # What from_passphrase does, keeping the file key for reuse.
            identifier = age_rt._AGE_RT_IDENTIFIER if fmt == "age-rt" else age_rt._AGE_IDENTIFIER
            file_key = os.urandom(16)
            header = age_rt._encode_age_scrypt_header(passphrase, file_key, os.urandom(16), identifier)
            templates[fmt] = (file_key, header)
        file_key, header = templates[fmt]
        pieces = [os.urandom(n) for n in case["chunks"]]
        final = case.get("final")
        if fmt == "age-rt":
            enc = age_rt.AgeRTEncoder(file_key, header, age_rt.CHUNK_SIZE)
            out = [enc.get_header()]
            out += [enc.encode_chunk(p) for p in pieces]
            if final is not None:
                last = os.urandom(final)
                pieces.append(last)
                out.append(enc.encode_chunk(last, is_final=True))
            else:
                out.append(enc.encode_chunk(b"", is_final=True))
        else:
            enc = age_rt.AgeEncoder(file_key, header, age_rt.CHUNK_SIZE)
            data = b"".join(pieces)
            blocks = [data[i:i + age_rt.CHUNK_SIZE] for i in range(0, len(data), age_rt.CHUNK_SIZE)]
            out = list(age_rt.iter_encode_chunks(blocks, enc))
        with open(os.path.join(directory, case["name"] + ".plain"), "wb") as f:
            f.write(b"".join(pieces))
        with open(os.path.join(directory, case["name"] + ".enc"), "wb") as f:
            f.write(b"".join(out))


def decode(directory, names):
    passphrase = os.environ["ZS_PASSPHRASE"]
    for name in names:
        with open(os.path.join(directory, name + ".enc"), "rb") as f:
            data = f.read()
        try:
            plain = b"".join(age_rt.decode_bytes(data, age_rt.AgeAutoDecoder(passphrase)))
        except Exception as e:  # the class name is the result
            with open(os.path.join(directory, name + ".err"), "w") as f:
                f.write(type(e).__name__)
            continue
        with open(os.path.join(directory, name + ".out"), "wb") as f:
            f.write(plain)


if __name__ == "__main__":
    if sys.argv[1] == "encode":
        encode(sys.argv[2])
    elif sys.argv[1] == "decode":
        decode(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("usage: agert_interop.py encode DIR | decode DIR NAME...")
