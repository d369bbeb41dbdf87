"""How commands reach a server: the client ``--server`` names, its reads patient for ``--wait``.

The client itself is the runner's (``stq.worker.client``), imported only
when a command talks to a server: ``stq validate`` needs none.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stq.cli.output import say
from stq.settings import Settings

if TYPE_CHECKING:  # imported lazily: `stq validate` needs no HTTP client
    from stq.worker.client import Client

#: Seconds ``submit --wait`` keeps making one read through an outage before it gives up.
WAIT_RETRY_FOR = 60.0


def client(args: argparse.Namespace, settings: Settings) -> Client:
    """The client for the command's ``--server`` (else ``STQ_SERVER``), with ``STQ_TOKEN``."""
    from stq.worker.client import Client

    return Client(getattr(args, "server", None) or settings.server_url, settings.token)


class PatientReads:
    """The client's reads, each made again through an outage (``retry_outages``).

    ``--wait`` follows a workflow that runs on whatever happens to this
    command: a slow answer or a restarting server is no reason to stop
    following it, and a server that took the connection but answered late
    is not "unreachable". Only reads go through here: they are safe to repeat.
    """

    def __init__(self, client: Client):
        self._client = client

    def __getattr__(self, name: str) -> Callable[..., Any]:
        from stq.worker.client import retry_outages

        read = getattr(self._client, name)

        def patient(*args: Any, **kwargs: Any) -> Any:
            return retry_outages(
                lambda: read(*args, **kwargs),
                url=self._client.url,
                within=WAIT_RETRY_FOR,
                on_retry=say,
            )

        return patient
