"""What the statements built once, on the tables, share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BindParameter, Column, bindparam


def param(column: Column[Any], /) -> BindParameter[Any]:
    """A bind parameter for ``column``, typed as it (so values are converted as the ORM would),
    named ``p_<column>``: the key its value is passed under."""
    return bindparam(f"p_{column.key}", type_=column.type)
