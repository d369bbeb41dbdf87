"""Where UTF-8 text may be cut: output is kept and sent in bytes, shown as text.

A command's output is cut by the 1 MiB tail rule, read from byte offsets and
sent in pieces; a cut inside a character would show as a replacement mark
(or, sent in two pieces, as two). These two functions say where the
characters begin and end, for the runner and the store alike.
"""

from __future__ import annotations


def char_start(data: bytes) -> int:
    """How many leading bytes of ``data`` continue a character begun before it."""
    skip = 0
    while skip < len(data) and skip < 4 and (data[skip] & 0xC0) == 0x80:
        skip += 1
    return skip


def whole_chars(data: bytes) -> int:
    """How many leading bytes of ``data`` hold whole characters (the rest of the last one
    has yet to come)."""
    end = len(data)
    for back in range(1, min(4, end) + 1):
        byte = data[end - back]
        if byte & 0xC0 == 0x80:
            continue  # a continuation byte: look further back for its lead
        if byte & 0x80 == 0:
            return end  # ASCII: complete
        need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
        return end if back >= need else end - back
    return end
