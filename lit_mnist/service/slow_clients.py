"""A header timeout for the service: a connection whose request head has not arrived whole within so many
seconds is closed.

uvicorn has none: its keep-alive timeout runs only between requests, and h11 keeps no timers, so a client that
sends half a request head holds its connection, and a file descriptor, for ever. This protocol is uvicorn's h11
protocol with a timer that starts when the connection is made and again when a response completes, and that is
cancelled once h11 has a request's whole head (its client's state leaves IDLE). It relies on uvicorn's
``H11Protocol`` hooks (``connection_made``, ``handle_events``, ``on_response_complete``, ``connection_lost``)
and attributes (``conn``, ``loop``, ``transport``): tests/service/test_slow_clients.py fails if they change.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT = 10.0


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not whole after ``header_timeout`` s."""

    header_timeout = DEFAULT_HEADER_TIMEOUT
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # a request's head has arrived whole
            self._disarm()

    def on_response_complete(self) -> None:
        self._arm()  # before: a pipelined request handled inside disarms it
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give ``uvicorn.Config(http=...)``: heads must arrive whole within ``seconds``."""
    if not seconds > 0:
        raise ValueError(f"the header timeout must be positive, got {seconds}")
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(seconds)})
