"""An attempt's captured output: appended as the runner sends it, the last MiB kept.

Output is addressed by absolute byte offsets in what the command printed:
``start`` is the first byte still kept (earlier ones fell to the 1 MiB tail
rule), ``end`` the byte after the last one received. A runner posts chunks
with the offset it has reached, so a repeated post stores nothing twice and a
missing stretch is refused (``OutputGap``) rather than silently closed up.
Output is appended whatever the attempt's state: what a cancelled, timed-out
or presumed-lost attempt printed is kept like any other.
"""

from __future__ import annotations

from typing import NamedTuple

from stq.errors import Conflict
from stq.settings import MAX_OUTPUT_BYTES
from stq.store.statements import named
from stq.store.tx import Tx
from stq.utf8 import char_start

KEPT = named("output_kept")
INSERT = named("output_insert")
UPDATE = named("output_update")


class Kept(NamedTuple):
    """What is kept of an attempt's output, and where it sits in all it printed."""

    text: str
    start: int
    end: int


def kept(tx: Tx, attempt_id: int) -> Kept:
    return _as_kept(tx.one(KEPT, (attempt_id,)))


def _as_kept(row: tuple | None) -> Kept:
    if row is None:
        return Kept("", 0, 0)
    text, start, end = row
    if end is None:  # stored before offsets were kept: all of it, from the beginning
        return Kept(text, 0, len(text.encode("utf-8")))
    return Kept(text, start, end)


def append(tx: Tx, attempt_id: int, text: str, offset: int | None, gap_ok: bool = False) -> Kept:
    """Add ``text``, which starts at byte ``offset`` of the output (None: at its end).

    Bytes before the current end are already stored and skipped. ``offset``
    beyond the end is a gap: refused with ``OutputGap``, unless ``gap_ok``
    (a result whose text is the tail of output never sent: what is kept then
    restarts at ``offset``).
    """
    row = tx.one(KEPT, (attempt_id,))
    now = _as_kept(row)
    data = text.encode("utf-8", errors="replace")  # a lone surrogate cannot be stored
    at = now.end if offset is None else offset
    if at > now.end and not gap_ok:
        raise OutputGap(f"output from byte {at} would leave a gap: the server has {now.end} bytes")
    if at < now.end:  # partly or wholly stored already (a repeated post)
        data = data[now.end - at :]
        data = data[char_start(data) :]
        at = now.end
    if not data:
        return now
    if at > now.end:  # a result's tail after a stretch never sent: keep from here
        whole, start = data, at
    else:
        whole, start = now.text.encode("utf-8") + data, now.start
    if len(whole) > MAX_OUTPUT_BYTES:
        cut = len(whole) - MAX_OUTPUT_BYTES
        cut += char_start(whole[cut:])
        whole, start = whole[cut:], start + cut
    text = tx.dialect.clean_text(whole.decode("utf-8", errors="replace"))
    stored = Kept(text, start, at + len(data))
    if row is None:
        tx.run(INSERT, (attempt_id, stored.text, stored.start, stored.end))
    else:
        tx.run(UPDATE, (stored.text, stored.start, stored.end, attempt_id))
    return stored


def read_from(whole: Kept, offset: int) -> Kept:
    """The text kept from absolute byte ``offset`` on, never splitting a character.

    ``start`` stays the first byte still kept, whatever the offset: a reader sees
    that bytes were lost exactly when it is past the offset it asked for, and else
    knows the text begins at its own offset.
    """
    if offset <= whole.start:
        return whole
    if offset >= whole.end:
        return Kept("", whole.start, whole.end)
    data = whole.text.encode("utf-8")[offset - whole.start :]
    skip = char_start(data)
    return Kept(data[skip:].decode("utf-8", errors="replace"), whole.start, whole.end)


class OutputGap(Conflict):
    """Output posted from beyond what the server has: bytes in between are missing."""
