"""The JSONPath subset the REST source reads records, cursors and next URLs with: ``$`` (the body),
``.name`` or ``['name']`` (a member), ``[n]`` (an element), ``[*]`` and ``.*`` (every element or
member). A path may leave out the leading ``$.`` (``data.items``)."""

from __future__ import annotations

import json
import json.scanner
import re
from collections.abc import Callable
from typing import Any, cast

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


_SPACE = re.compile(r"[ \t\n\r]*")
_SCAN: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(cast(Any, json.JSONDecoder()))


def _skip(text: str, index: int) -> int:
    """The index of the first character at or after ``index`` that is not JSON whitespace."""
    match = _SPACE.match(text, index)
    return match.end() if match is not None else index


def load_selecting(content: bytes, steps: list[str | int | None]) -> tuple[Any, str | None]:
    """A JSON document parsed as :func:`json.loads` parses it, and, when ``steps`` are member names
    that lead to a list whose elements are all objects, the exact JSON text of those elements as
    the API wrote them: what lies between the list's brackets, elements separated by commas (raises
    :class:`ValueError` for a document that is not JSON).

    The text lets a reader keep the records as the API wrote them instead of encoding the parsed
    objects again, which costs as much as parsing them; the list is parsed by one call of json's C
    scanner, so a record costs no Python step of its own."""
    text = content.decode(json.detect_encoding(content), "surrogatepass")
    if not steps or not all(isinstance(step, str) for step in steps):
        return json.loads(text), None
    try:
        found: list[str | None] = [None]
        index = _skip(text, 0)
        body, end = _value(text, index, [str(step) for step in steps], found)
        if _skip(text, end) != len(text):
            raise ValueError("extra data")
    except (ValueError, StopIteration, IndexError):
        return json.loads(text), None  # json's own error (or a value this reader does not follow)
    return body, found[0]


def _value(text: str, index: int, steps: list[str], found: list[str | None]) -> tuple[Any, int]:
    """The value at ``index``, following ``steps`` into objects; the text of the list at their end
    is kept in ``found[0]`` when every element is an object."""
    if not steps:
        value, end = _SCAN(text, index)
        if type(value) is list and all(type(element) is dict for element in value):
            found[0] = text[index + 1 : end - 1]
        return value, end
    if text[index] != "{":
        return _SCAN(text, index)
    obj: dict[str, Any] = {}
    index = _skip(text, index + 1)
    if text[index] == "}":
        return obj, index + 1
    while True:
        if text[index] != '"':
            raise ValueError("expected a member name")
        key, index = _SCAN(text, index)
        index = _skip(text, index)
        if text[index] != ":":
            raise ValueError("expected ':'")
        index = _skip(text, index + 1)
        if key == steps[0]:
            found[0] = None  # a repeated member: the last one counts, as in json.loads
            obj[key], index = _value(text, index, steps[1:], found)
        else:
            obj[key], index = _SCAN(text, index)
        index = _skip(text, index)
        if text[index] == "}":
            return obj, index + 1
        if text[index] != ",":
            raise ValueError("expected ',' or '}'")
        index = _skip(text, index + 1)
