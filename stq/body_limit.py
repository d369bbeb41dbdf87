"""The one size limit of a request body, wherever a body is weighed.

The server refuses a body over it from its declared length and again while
reading it (a chunked body declares none); the CLI refuses a workflow file
over it, and a submit body over it, before sending anything. Each of them
asks ``check_body_size``, so the rule and its wording are the same
everywhere: the server answers its ``PayloadTooLarge`` as a 413, the loader
turns it into a problem located at the top of the file.
"""

from __future__ import annotations

from stq.errors import PayloadTooLarge
from stq.settings import MAX_BODY_BYTES


def check_body_size(
    size: int, what: str = "The request body", limit: int = MAX_BODY_BYTES
) -> None:
    """``PayloadTooLarge`` when ``size`` bytes pass ``limit``; ``what`` names them in it."""
    if size > limit:
        raise PayloadTooLarge(f"{what} is over the {limit} byte limit.")
