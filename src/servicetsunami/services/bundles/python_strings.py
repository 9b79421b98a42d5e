"""What a Python expression says as text, read without running it: string literals, f-strings,
``+``, ``%`` and ``.format``, and names known to hold a string. Parts only known at run time become
placeholders (:func:`~.sql_scan.placeholder`) that the SQL reader reports as dynamic."""

from __future__ import annotations

import ast
import re

from servicetsunami.services.bundles.sql_scan import placeholder

MAX_DEPTH = 32
_PERCENT_RE = re.compile(r"%(\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[sdifr]")


def has_placeholder(text: str, /) -> bool:
    return "__tsunami_dynamic_" in text


def text_of(node: ast.expr, strings: dict[str, str], /) -> tuple[str | None, dict[str, str]]:
    """The text ``node`` evaluates to, its run-time parts as :func:`~.sql_scan.placeholder` ids (and
    what each stands for, as ``{expr}``); None when it cannot be known. ``strings`` are the names
    known to hold a string."""
    fields: dict[str, str] = {}

    def hole(expr: ast.expr | str) -> str:
        key = str(len(fields))
        fields[key] = "{" + (expr if isinstance(expr, str) else _unparse(expr)) + "}"
        return placeholder(int(key))

    def walk(n: ast.expr, depth: int) -> str | None:
        if depth > MAX_DEPTH:
            return None
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            return n.value
        if isinstance(n, ast.JoinedStr):
            parts = []
            for v in n.values:
                if isinstance(v, ast.Constant):
                    parts.append(str(v.value))
                elif isinstance(v, ast.FormattedValue):
                    known = walk(v.value, depth + 1) if isinstance(v.value, ast.Name) else None
                    parts.append(
                        known if known is not None and v.conversion == -1 and v.format_spec is None else hole(v.value)
                    )
            return "".join(parts)
        if isinstance(n, ast.Name):
            if n.id in strings:
                return strings[n.id]
            return None
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
            left, right = walk(n.left, depth + 1), walk(n.right, depth + 1)
            if left is None and right is None:
                return None
            return (left if left is not None else hole(n.left)) + (right if right is not None else hole(n.right))
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod):
            template = walk(n.left, depth + 1)
            if template is None:
                return None
            operands = n.right.elts if isinstance(n.right, ast.Tuple) else [n.right]
            texts = [walk(e, depth + 1) if not isinstance(e, ast.Starred) else None for e in operands]
            specs = list(_PERCENT_RE.finditer(template))
            if (
                len(specs) == len(texts)
                and all(k is not None and m.group(1) is None for k, m in zip(texts, specs, strict=True))
                and all(m.group(0).endswith("s") for m in specs)
            ):
                values = iter(texts)
                return _PERCENT_RE.sub(lambda m: str(next(values)), template)
            return _PERCENT_RE.sub(lambda m: hole(m.group(0)), template)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "format":
            template = walk(n.func.value, depth + 1)
            if template is None:
                return None
            args = [walk(a, depth + 1) if not isinstance(a, ast.Starred) else None for a in n.args]
            kwargs = {k.arg: walk(k.value, depth + 1) for k in n.keywords if k.arg}
            auto = iter(range(len(args)))

            def field(m: re.Match[str]) -> str:
                name = m.group(0)[1:-1]
                key = name.split("!")[0].split(":")[0]
                value: str | None = None
                if key == "" and ":" not in name and "!" not in name:
                    at = next(auto, None)
                    value = args[at] if at is not None else None
                elif key.isdigit() and int(key) < len(args) and key == name:
                    value = args[int(key)]
                elif key == name:
                    value = kwargs.get(key)
                return value if value is not None else hole(name or "?")

            template = template.replace("{{", "\x00").replace("}}", "\x01")
            filled = re.sub(r"\{[^{}]*\}", field, template)
            return filled.replace("\x00", "{").replace("\x01", "}")
        return None

    return walk(node, 0), fields


def _unparse(node: ast.expr) -> str:
    try:
        return ast.unparse(node)[:80]
    except Exception:  # unparse of an odd tree is best effort
        return "?"
