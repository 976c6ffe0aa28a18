"""Dashboard sessions: signed in with an API key, held in the server's memory, each with a CSRF token.

The cookie carries only a random session token (256 bits), never the API key; it is HttpOnly
(no script reads it), SameSite=Strict (no other site's page sends it) and Secure when the page
came over HTTPS. Every form carries the session's CSRF token, compared in constant time. A
session ends at sign-out, after `SESSION_IDLE_SECONDS` unused, or as soon as its key is revoked
(the key is looked up again on every page). A server restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from taxmatch.api.keys import ApiKey

COOKIE_NAME = "taxmatch_session"
SESSION_IDLE_SECONDS = 30 * 60
CSRF_FIELD = "csrf_token"


@dataclass
class Session:
    token: str
    key_id: str
    csrf_token: str
    last_used: float = field(default=0.0)


class SessionStore:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, key: ApiKey) -> Session:
        session = Session(secrets.token_urlsafe(32), key.key_id, secrets.token_urlsafe(32), self._clock())
        with self._lock:
            self._expire()
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            self._expire()
            session = self._sessions.get(token)
            if session is not None:
                session.last_used = self._clock()
            return session

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def _expire(self) -> None:
        oldest = self._clock() - SESSION_IDLE_SECONDS
        for token in [token for token, session in self._sessions.items() if session.last_used < oldest]:
            del self._sessions[token]


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf_token.encode(), submitted.encode())
