"""ZebraStream bytestreams on the Rust core, with the official client's file API.

Code written for ``zebrastream.io.file`` keeps working when its import line
changes::

    import zebrastream_rs as zsfile

    with zsfile.open("wb", stream_path="/demo", passphrase="...", encryption_mode="age-rt") as f:
        f.write(b"hello")

Differences that protect the data (docs/python.md, "Migration"):

- a stream that ends early raises :class:`TruncatedError` (an ``OSError``)
  on ``read``, and a stream that fails to decrypt raises
  :class:`DecryptionError` (an ``OSError``);
- a writer that is garbage-collected without ``close()`` aborts the
  upload (the reader gets :class:`TruncatedError`) instead of ending the
  stream as if it were complete;
- a writer whose reader left raises ``BrokenPipeError`` on ``close()``
  too: the data did not arrive.

Bytes move with the GIL released: other Python threads keep running while
a call waits for the peer or moves data.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from typing import Any, BinaryIO, Iterator

from . import _native
from ._native import DecryptionError, TruncatedError

__all__ = [
    "DecryptionError",
    "Reader",
    "TruncatedError",
    "Writer",
    "open",
    "seekable_from_stream",
]
__version__ = _native.__version__

_WRITER_KWARGS = frozenset(
    {
        "stream_path",
        "access_token",
        "content_type",
        "connect_timeout",
        "connect_api_url",
        "passphrase",
        "write_buffer_size",
        "transfer_buffer_multiplier",
        "auto_flush_delay",
        "encryption_mode",
        # ours
        "recipients",
        "ticket",
        "forward_secrecy",
        "resume",
        "resume_buffer",
        "stall_timeout",
        "resume_timeout",
    }
)
_READER_KWARGS = frozenset(
    {
        "stream_path",
        "access_token",
        "content_type",
        "connect_timeout",
        "block_size",
        "connect_api_url",
        "passphrase",
        # ours
        "identities",
        "ticket",
        "forward_secrecy",
        "resume",
        "resume_buffer",
        "stall_timeout",
        "resume_timeout",
    }
)


def _check_kwargs(kind: str, kwargs: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise TypeError(f"{kind}() got unexpected keyword argument(s): {', '.join(unknown)}")


def _as_list(keys: Any) -> list[Any] | None:
    if keys is None:
        return None
    if isinstance(keys, (str, bytes, os.PathLike)):
        return [os.fsdecode(keys) if isinstance(keys, bytes) else keys]
    return list(keys)


class _Stream(io.BufferedIOBase):
    """What a writer and a reader share: the native stream, ``abort()``,
    and the context-manager rule of the official client (an exception in
    the ``with`` block aborts, a clean exit closes)."""

    _native: Any = None
    _closed_name = "<zebrastream-closed-stream>"

    def _stream(self) -> Any:
        if self._native is None:
            raise ValueError("I/O operation on closed file")
        return self._native

    def abort(self) -> None:
        """Drops the transfer without an end: a writer's reader gets
        :class:`TruncatedError`; a reader skips the end-of-stream check."""
        stream, self._native = self._native, None
        if stream is not None:
            stream.abort()
            super().close()

    _abort = abort  # the official client's name

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()

    def __del__(self) -> None:
        # Never end a stream the program did not close: a writer dropped on
        # an error path must not look complete to the reader.
        if self._native is not None:
            self.abort()

    @property
    def closed(self) -> bool:
        return self._native is None

    @property
    def name(self) -> str:
        return getattr(self, "_stream_path", self._closed_name)

    def seekable(self) -> bool:
        return False


class Writer(_Stream):
    """A stream writer: ``write()`` bytes, ``flush()`` to push them out,
    ``close()`` to end the stream and wait for the relay's confirmation.

    Takes the official client's keyword arguments (``stream_path``,
    ``access_token``, ``content_type``, ``connect_timeout``,
    ``connect_api_url``, ``passphrase`` with ``encryption_mode``,
    ``write_buffer_size``, ``transfer_buffer_multiplier``,
    ``auto_flush_delay``) and ours: ``recipients`` (``age1…``/``ssh-…``
    strings or recipients files), ``ticket`` (``zs1…``, with
    ``forward_secrecy=True`` by default) and ``resume`` (on by default with
    a ticket; both ends must agree): a broken connection is resumed, and
    ``close()`` returns only once the reader sent its receipt that it read
    the whole stream and closed it without an error. With resume on,
    ``resume_buffer`` (bytes of sealed chunks kept for re-sending, default
    16 MiB, at least 64 KiB), ``stall_timeout`` and ``resume_timeout``
    (seconds, default 15 and 60) tune it as the CLI's flags of those names.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        _check_kwargs("Writer", kwargs, _WRITER_KWARGS)
        self._closed_name = "<zebrastream-closed-writer>"
        passphrase = kwargs.get("passphrase")
        mode = kwargs.get("encryption_mode")
        if passphrase is not None and mode is None:
            raise ValueError("encryption_mode must be specified when passphrase is set: use 'age-rt' or 'age'")
        if mode is not None and mode not in ("age-rt", "age"):
            raise ValueError(f"encryption_mode must be 'age-rt' or 'age', not {mode!r}")
        multiplier = kwargs.get("transfer_buffer_multiplier", 10)
        if multiplier < 1:
            raise ValueError("transfer_buffer_multiplier must be >= 1")
        delay = kwargs.get("auto_flush_delay")
        if delay is not None and delay < 0:
            raise ValueError("auto_flush_delay must be >= 0")
        buffer_size = kwargs.get("write_buffer_size", 65536)
        self._native = _native.connect_writer(
            stream_path=kwargs.get("stream_path"),
            connect_api_url=kwargs.get("connect_api_url"),
            access_token=kwargs.get("access_token"),
            connect_timeout=kwargs.get("connect_timeout"),
            content_type=kwargs.get("content_type"),
            auto_flush_delay=delay,
            write_buffer_size=buffer_size,
            passphrase=passphrase,
            encryption_mode=mode,
            recipients=_as_list(kwargs.get("recipients")),
            ticket=kwargs.get("ticket"),
            forward_secrecy=kwargs.get("forward_secrecy", True),
            resume=kwargs.get("resume"),
            resume_buffer=kwargs.get("resume_buffer"),
            stall_timeout=kwargs.get("stall_timeout"),
            resume_timeout=kwargs.get("resume_timeout"),
        )
        self._stream_path = self._native.stream_path

    def write(self, data: Any) -> int:  # type: ignore[override]
        """Writes all of ``data`` (a bytes-like object); returns its length."""
        stream = self._stream()
        if not isinstance(data, bytes):
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError(f"a bytes-like object is required, not '{type(data).__name__}'")
            data = bytes(data)
        return stream.write(data)

    def flush(self) -> None:
        """Hands every byte written so far to the connection (delivery is
        confirmed only by ``close()``)."""
        if self._native is None:
            return  # io.IOBase.close() flushes a closed file too
        self._native.flush()

    def close(self) -> None:
        """Ends the stream and waits until the relay confirms the reader got
        every byte. Raises ``OSError`` (``BrokenPipeError`` if the reader
        left) when that did not happen."""
        stream, self._native = self._native, None
        if stream is not None:
            try:
                stream.finish()
            finally:
                super().close()

    @property
    def mode(self) -> str:
        return "wb"

    @property
    def bytes_written(self) -> int:
        """Plaintext bytes written so far."""
        return 0 if self._native is None else self._native.bytes_written

    def readable(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


class Reader(_Stream):
    """A stream reader: ``read()``/``read1()``/``readinto()`` return ``b""``
    (or 0) only at the verified end of the stream.

    Takes the official client's keyword arguments (``stream_path``,
    ``access_token``, ``content_type``, ``connect_timeout``, ``block_size``,
    ``connect_api_url``, ``passphrase``; the format is detected) and ours:
    ``identities`` (``AGE-SECRET-KEY-1…`` strings or identity files),
    ``ticket`` and ``resume`` (on by default with a ticket: a broken
    connection is resumed, and ``close()`` after the end sends the writer
    the receipt its ``close()`` waits for; an exception in the ``with``
    block tells the writer the stream was not committed; ``stall_timeout``
    and ``resume_timeout`` tune it as for the writer).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        _check_kwargs("Reader", kwargs, _READER_KWARGS)
        self._closed_name = "<zebrastream-closed-reader>"
        # A read raised: close() then does not report the missing end again.
        self._failed = False
        self._native = _native.connect_reader(
            stream_path=kwargs.get("stream_path"),
            connect_api_url=kwargs.get("connect_api_url"),
            access_token=kwargs.get("access_token"),
            connect_timeout=kwargs.get("connect_timeout"),
            passphrase=kwargs.get("passphrase"),
            identities=_as_list(kwargs.get("identities")),
            ticket=kwargs.get("ticket"),
            forward_secrecy=kwargs.get("forward_secrecy", True),
            resume=kwargs.get("resume"),
            resume_buffer=kwargs.get("resume_buffer"),
            stall_timeout=kwargs.get("stall_timeout"),
            resume_timeout=kwargs.get("resume_timeout"),
        )
        self._stream_path = self._native.stream_path

    def _read(self, size: int) -> bytes:
        stream = self._stream()
        try:
            return stream.read(size)
        except BaseException:
            self._failed = True
            raise

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes, at least one (waiting for them); ``b""`` at
        the end. ``read()`` / ``read(-1)`` reads to the end."""
        return self._read(-1 if size is None else size)

    def read1(self, size: int = -1) -> bytes:
        """Like ``read(size)``; a negative ``size`` reads one block of
        ``io.DEFAULT_BUFFER_SIZE``."""
        return self._read(io.DEFAULT_BUFFER_SIZE if size < 0 else size)

    def readinto(self, buffer: Any) -> int:  # type: ignore[override]
        """Reads into a writable buffer; returns the byte count (0 at the end)."""
        view = memoryview(buffer).cast("B")
        data = self._read(len(view))
        n = len(data)
        view[:n] = data
        return n

    readinto1 = readinto

    def close(self) -> None:
        """Closes the reader. Raises ``OSError("close failed: EOF not
        consumed")`` if the end of the stream was never read (and no read
        failed), as the official client does: the program saw only part of
        it."""
        stream, self._native = self._native, None
        if stream is not None:
            try:
                at_eof = stream.at_eof
                try:
                    if at_eof:
                        # With resume, the receipt the writer's close() waits for.
                        stream.confirm()
                finally:
                    stream.abort()
                if not at_eof and not self._failed:
                    raise OSError("close failed: EOF not consumed")
            finally:
                super().close()

    @property
    def mode(self) -> str:
        return "rb"

    @property
    def content_type(self) -> str | None:
        """The ``Content-Type`` the writer announced, if any."""
        return None if self._native is None else self._native.content_type

    @property
    def bytes_read(self) -> int:
        """Plaintext bytes read so far."""
        return 0 if self._native is None else self._native.bytes_read

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False


class _TextWriter(io.TextIOWrapper):
    """The text mode of a :class:`Writer`: like ``io.TextIOWrapper``, except
    that leaving a ``with`` block by an exception, or garbage collection
    without ``close()``, aborts the stream instead of ending it."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.buffer.abort()
        else:
            self.close()

    def __del__(self) -> None:
        if not self.buffer.closed:
            self.buffer.abort()


@contextlib.contextmanager
def seekable_from_stream(stream: BinaryIO, chunk_size: int = 1024 * 1024) -> Iterator[BinaryIO]:
    """Buffers a sequential stream into a temporary file and yields it,
    rewound, for readers that seek (``pyarrow.parquet``, ZIP); the file is
    removed on exit."""
    with tempfile.TemporaryFile(suffix=".dat") as tmp:
        buffer = bytearray(chunk_size)
        view = memoryview(buffer)
        while n := stream.readinto(view):
            tmp.write(view[:n])
        tmp.seek(0)
        yield tmp


@contextlib.contextmanager
def _buffered_reader(reader: Reader, encoding: str | None, chunk_size: int) -> Iterator[Any]:
    with reader as sequential, seekable_from_stream(sequential, chunk_size) as seekable:
        yield seekable if encoding is None else io.TextIOWrapper(seekable, encoding=encoding)


def open(  # noqa: A001 - the official client's name
    mode: str,
    encoding: str = "utf-8",
    random_read: bool = False,
    download_chunk_size: int = 1024 * 1024,
    **kwargs: Any,
) -> Any:
    """Opens a stream: ``"r"``/``"rt"``/``"rb"`` to read, ``"w"``/``"wt"``/
    ``"wb"`` to write (text modes wrap the binary object in
    ``io.TextIOWrapper``). ``random_read=True`` (read modes only) buffers the
    whole stream into a temporary file and returns a context manager that
    yields it, seekable. Keyword arguments: see :class:`Writer` and
    :class:`Reader`.

    Raises ``ValueError`` (bad mode or settings), ``TimeoutError`` (no peer
    within ``connect_timeout``), ``OSError`` (refused token, unreachable
    relay), :class:`DecryptionError` (wrong passphrase or key).
    """
    if random_read and mode not in ("r", "rt", "rb"):
        raise ValueError("random_read=True only supported for read modes ('r', 'rt', 'rb')")
    if mode in ("r", "rt", "rb"):
        text = mode != "rb"
        reader = Reader(**kwargs)
        if random_read:
            return _buffered_reader(reader, encoding if text else None, download_chunk_size)
        if not text:
            return reader
        wrapper = io.TextIOWrapper(reader, encoding=encoding)
        wrapper.mode = "r"  # type: ignore[misc]
        return wrapper
    if mode in ("w", "wt", "wb"):
        writer = Writer(**kwargs)
        if mode == "wb":
            return writer
        wrapper = _TextWriter(writer, encoding=encoding)
        wrapper.mode = "w"  # type: ignore[misc]
        return wrapper
    raise ValueError(f"Unsupported mode: {mode!r}. Supported: 'r', 'rt', 'rb', 'w', 'wt', 'wb'.")
