"""Every match of a regular expression in a string column, with the text around it, found and
replaced without per-row Python.

pyarrow's RE2 kernels either find one match per row (extract_regex) or replace all matches blindly
(replace_substring_regex). To check each candidate first (a checksum, a network range, the words
before it), one global replace wraps every match in a sentinel character that the batch does not
contain, and one split on that sentinel cuts each row into alternating pieces:

    text, match, text, match, ..., text        (always 2k+1 pieces for k matches)

The pieces of all rows form one flat Arrow array, so checks run on every match of a batch at
once, the pieces on either side of a match are its context, and joining the pieces back (some
matches swapped for a placeholder or dropped) rebuilds the column.

With `keeps_context` a pattern has three groups: context before, the match, context after
(`api_key = "`, the secret, `"`); the context stays in the text pieces and only group 2 is a
match. RE2 has no lookaround, so this is how a match is conditioned on its surroundings.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.text.stats import as_text

# Characters that never occur in real text, tried in order; a batch that holds one of them (a
# binary blob decoded as text) gets the next.
SENTINELS = ("\x00", "\x01", "\ufdd0", "\ufdd1", "\U0010fffe", "\U0010ffff")


def string_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The int64 offsets and the UTF-8 bytes of a string array (offsets index into the bytes)."""
    values = values.cast(pa.large_string())
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int64)[values.offset: values.offset + len(values) + 1]
    data = np.frombuffer(values.buffers()[2], dtype=np.uint8) if offsets[-1] > offsets[0] else np.zeros(0, np.uint8)
    return offsets, data


def sentinel(text: pa.Array) -> str:
    for ch in SENTINELS:
        if not pc.any(pc.match_substring(text, ch)).as_py():
            return ch
    raise ValueError("every sentinel character occurs in the batch")  # pragma: no cover


class Matches:
    """The pieces of each row of `text` around every match of `pattern`.

    `doc[i]` is the row of match i and `found` its text; `before()`/`after()` are the pieces
    around it (the text since the previous match and until the next one).
    """

    def __init__(self, text: pa.Array, pattern: str, keeps_context: bool = False):
        self.text = as_text(text)
        mark = sentinel(self.text)
        rewrite = f"\\1{mark}\\2{mark}\\3" if keeps_context else f"{mark}\\0{mark}"
        lists = pc.split_pattern(pc.replace_substring_regex(self.text, pattern, rewrite), mark)
        self.offsets = lists.offsets.to_numpy().astype(np.int64)
        self.offsets -= self.offsets[0]
        self.pieces = pc.list_flatten(lists)
        counts = np.diff(self.offsets)
        self.row = np.repeat(np.arange(len(self.text)), counts)  # of each piece
        # Odd positions inside a row are matches.
        position = np.arange(len(self.pieces)) - np.repeat(self.offsets[:-1], counts)
        self.index = np.flatnonzero(position % 2 == 1)
        self.doc = self.row[self.index]

    def __len__(self) -> int:
        return len(self.index)

    @property
    def found(self) -> pa.Array:
        return self.pieces.take(self.index)

    def before(self) -> pa.Array:
        return self.pieces.take(self.index - 1)

    def after(self) -> pa.Array:
        return self.pieces.take(self.index + 1)

    def per_doc(self, which: np.ndarray) -> np.ndarray:
        """How many of the matches selected by the boolean mask `which` each row holds."""
        return np.bincount(self.doc[which], minlength=len(self.text))

    def replace(self, which: np.ndarray, placeholder: str) -> pa.Array:
        """The text with the matches selected by `which` replaced by `placeholder`."""
        if not which.any():
            return self.text
        swap = np.zeros(len(self.pieces), dtype=bool)
        swap[self.index[which]] = True
        values = pc.if_else(pa.array(swap), pa.scalar(placeholder, self.pieces.type), self.pieces)
        return self._join(values, self.offsets)

    def drop(self, pieces: np.ndarray) -> pa.Array:
        """The text without the pieces selected by the boolean mask `pieces` (over all pieces)."""
        keep = ~pieces
        offsets = np.concatenate([[0], np.cumsum(np.bincount(self.row[keep], minlength=len(self.text)))])
        return self._join(self.pieces.filter(pa.array(keep)), offsets)

    @staticmethod
    def _join(values: pa.Array, offsets: np.ndarray) -> pa.Array:
        lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)
        return pc.binary_join(lists, pa.scalar("", pa.large_string()))
