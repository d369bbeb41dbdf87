"""The environment and flags, read once into a frozen ``Settings``.

Nothing else in STQ reads ``os.environ`` for configuration: the CLI and the
gunicorn entry point build one ``Settings`` and pass it down, so tests can
build their own without touching the process environment.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SERVER = "http://127.0.0.1:8000"
DEFAULT_DB = "stq.db"
DEFAULT_HEARTBEAT_TIMEOUT = 60.0
#: Request bodies over this are refused with 413 before they are read whole.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: A request body's first seconds, before it must keep arriving at ``BODY_MIN_RATE``.
BODY_GRACE = 10.0
#: Bytes per second a request body must arrive at after ``BODY_GRACE`` (on average:
#: each KiB received buys one more second), else the server stops reading it.
BODY_MIN_RATE = 1024.0
#: Output kept per attempt: the last MiB of stdout and stderr together.
MAX_OUTPUT_BYTES = 1024 * 1024
#: Longest long-poll a claim may ask for; more counts as this.
MAX_CLAIM_WAIT = 30.0


@dataclass(frozen=True)
class Settings:
    """Everything STQ's processes are configured with."""

    server_url: str = DEFAULT_SERVER
    token: str | None = None
    db: str = DEFAULT_DB
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT
    #: Host names (``name`` or ``name:port``, lower case) clients may use beyond
    #: loopback and the server's own address: names behind a proxy, DNS names.
    allowed_hosts: tuple[str, ...] = ()
    #: The body-rate rule's numbers: fixed for users (no variable sets them), shorter in tests.
    body_grace: float = BODY_GRACE
    body_min_rate: float = BODY_MIN_RATE

    @property
    def heartbeat_interval(self) -> float:
        """What runners are asked for: a sixth of the timeout, at most 10 s."""
        return min(10.0, self.heartbeat_timeout / 6)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``STQ_SERVER``, ``_TOKEN``, ``_DB``, ``_HEARTBEAT_TIMEOUT``, ``_ALLOWED_HOSTS``."""
        env = os.environ if environ is None else environ
        timeout = heartbeat_timeout(env.get("STQ_HEARTBEAT_TIMEOUT", ""))
        return cls(
            server_url=(env.get("STQ_SERVER") or DEFAULT_SERVER).rstrip("/"),
            token=env.get("STQ_TOKEN") or None,
            db=env.get("STQ_DB") or DEFAULT_DB,
            heartbeat_timeout=DEFAULT_HEARTBEAT_TIMEOUT if timeout is None else timeout,
            allowed_hosts=allowed_hosts(env.get("STQ_ALLOWED_HOSTS", "")),
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_host(text: str) -> tuple[str, int | None] | None:
    """(name in lower case, port or None) of ``name[:port]`` or ``[v6][:port]``; None if malformed.

    How the server reads a ``Host`` header and every ``STQ_ALLOWED_HOSTS``
    entry, so ``stq server`` refuses at start exactly the entries it could
    never match.
    """
    from falcon.util.uri import parse_host as falcon_parse_host  # not at import: CLI start-up

    try:
        name, port = falcon_parse_host(text.strip().lower())
    except ValueError:
        return None
    return (name, port) if name else None


def allowed_hosts(text: str) -> tuple[str, ...]:
    """``STQ_ALLOWED_HOSTS``' entries: comma-separated, blanks dropped, in lower case."""
    return tuple(name for part in text.split(",") if (name := part.strip().lower()))


def heartbeat_timeout(text: str) -> float | None:
    """``STQ_HEARTBEAT_TIMEOUT``'s seconds (the default when unset); None if not a usable number.

    Only ``stq server`` refuses a bad value (before it starts); every other
    process falls back to the default, since the setting is not theirs.
    """
    text = text.strip()
    if not text:
        return DEFAULT_HEARTBEAT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None
