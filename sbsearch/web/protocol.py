"""uvicorn's HTTP/1.1 protocol (h11) with a time limit on a request's headers.

uvicorn (0.55) times out only an idle keep-alive connection, and any byte received cancels that
timer: a client that sends its headers a few bytes at a time holds a connection (and a slot of
--max-connections) for as long as it likes. This protocol closes a connection whose request line and
headers have not all arrived within --header-timeout seconds of the connection opening, or of the
previous response. A slow body is not covered (only the sign-in form has one, and it is small); a
reverse proxy in front should still set its own limits (nginx: client_header_timeout, client_body_timeout).
"""

from __future__ import annotations

import json
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0


def _header_timeout_s() -> float:
    # every worker process builds its app from the same environment (`sbsearch serve` sets it)
    try:
        return float(json.loads(os.environ["SBSEARCH_SERVE_SETTINGS"]).get("header_timeout", DEFAULT_HEADER_TIMEOUT_S))
    except (KeyError, ValueError, TypeError):
        return DEFAULT_HEADER_TIMEOUT_S


class HeaderTimeoutProtocol(H11Protocol):
    _header_timer = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:  # the request's headers are in
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the next request on this connection gets the same limit

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(_header_timeout_s(), self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self.transport.close()
