"""The JSONPath subset the REST source reads records, cursors and next URLs with: ``$`` (the body),
``.name`` or ``['name']`` (a member), ``[n]`` (an element), ``[*]`` and ``.*`` (every element or
member). A path may leave out the leading ``$.`` (``data.items``)."""

from __future__ import annotations

import re
from typing import Any

_STEP = re.compile(r"\.([A-Za-z0-9_\-]+)|\.\*|\[(\d+)\]|\[\*\]|\['([^']+)'\]")


def parse(path: str) -> list[str | int | None]:
    """The steps of ``path``: member names, element indexes, and None for every element."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    elif text:
        text = "." + text
    steps: list[str | int | None] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"{path!r} is not a supported JSONPath")
        name, index, quoted = match.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(int(index))
        elif quoted is not None:
            steps.append(quoted)
        else:
            steps.append(None)
        position = match.end()
    return steps


def find(data: Any, steps: list[str | int | None]) -> list[Any]:
    """Every value at ``steps`` in ``data`` (none when the path leads nowhere)."""
    current = [data]
    for step in steps:
        following: list[Any] = []
        for value in current:
            if step is None:
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict):
                    following.extend(value.values())
            elif isinstance(step, int):
                if isinstance(value, list) and step < len(value):
                    following.append(value[step])
            elif isinstance(value, dict) and step in value:
                following.append(value[step])
        current = following
    return current


def first(data: Any, steps: list[str | int | None]) -> Any:
    """The first value at ``steps``, or None."""
    found = find(data, steps)
    return found[0] if found else None


def records(data: Any, steps: list[str | int | None]) -> list[Any]:
    """The records a selector picks: a list found is its elements, anything else one record."""
    found = find(data, steps)
    if len(found) == 1 and isinstance(found[0], list):
        return found[0]
    return [value for value in found if value is not None]
