"""A1 ranges: a sheet's title quoted for a range, and the first rows of a range (for samples)."""

from __future__ import annotations

import re

_CELLS = re.compile(r"^([A-Za-z]*)(\d*)(?::([A-Za-z]*)(\d*))?$")


def quoted(title: str) -> str:
    """A sheet title as a range of the whole sheet (quoted, quotes doubled)."""
    return "'" + title.replace("'", "''") + "'"


def head(range_: str, rows: int) -> str:
    """The first ``rows`` rows of ``range_`` (``Sheet!B3:F`` -> ``Sheet!B3:F{3 + rows - 1}``)."""
    sheet, bang, cells = range_.rpartition("!")
    if not bang:
        if _CELLS.match(range_) and range_:
            sheet, cells = "", range_
        else:
            sheet, cells = range_, ""  # a sheet's title alone
    prefix = f"{sheet}!" if sheet else ""
    match = _CELLS.match(cells) if cells else None
    if match is None:
        return f"{prefix}1:{rows}"
    c1, r1, c2, r2 = match.groups()
    first = int(r1) if r1 else 1
    last = first + rows - 1
    if r2:
        last = min(last, int(r2))
    if c2 is None:  # one cell
        return f"{prefix}{cells}"
    return f"{prefix}{c1}{first}:{c2}{last}"
