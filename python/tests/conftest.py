"""Fixtures: our relay (relay.py), unique stream paths, payloads, and
threads that run one end of a stream while the test runs the other."""

from __future__ import annotations

import random
import sys
import threading
import uuid
from typing import Any, Callable

import pytest
from relay import Relay, relay_binary  # noqa: F401 - relay_binary is for the tests

PASSPHRASE = "python binding passphrase 7c1e"


@pytest.fixture(scope="session")
def relay() -> Any:
    running = Relay()
    yield running
    running.stop()


@pytest.fixture
def stream_path() -> str:
    return f"/pytest/{uuid.uuid4().hex}"


@pytest.fixture
def endpoint(relay: Relay, stream_path: str) -> dict[str, Any]:
    """The keyword arguments that address a fresh stream on our relay."""
    return {"stream_path": stream_path, "connect_api_url": relay.connect_url, "connect_timeout": 60}


def payload(size: int, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


class Background:
    """Runs `target` in a thread; `result()` joins it and returns its value
    or raises what it raised."""

    def __init__(self, target: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = target()
            except BaseException as e:  # noqa: BLE001 - handed to result()
                self._error = e

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def result(self, timeout: float = 120) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the background side did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value


def official_python() -> str:
    """The Python that has the official client (this venv has both)."""
    return sys.executable
