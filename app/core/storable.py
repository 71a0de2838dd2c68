"""What both databases can store: one check for JSON-like values from clients and annotators.

PostgreSQL refuses U+0000 in `text` and `jsonb` (a 500 at insert), while SQLite stores it; neither
can encode an unpaired surrogate (U+D800–U+DFFF) as UTF-8. Values that reach the database from
outside (request bodies, imported rows, answers) are checked here first, so both databases refuse
the same input with a 422 that points at the bad string, instead of one of them failing late.

Numbers too: JSON values are encoded with orjson on their way to PostgreSQL and in digests, and
orjson (like SQLite's JSON functions) knows 64-bit integers only, while NaN and Infinity are not
JSON at all (PostgreSQL refuses them, orjson silently writes null). Python's parser accepts all
of them (`1e400` becomes Infinity), so an integer outside the signed 64-bit range or a number
that is not finite is refused here with the rest.

Nesting is bounded too: Python's JSON parser recurses, so a value nested deeper than
`MAX_JSON_DEPTH` is refused before anything walks it recursively. The walk is iterative, so the
check itself cannot overflow the stack.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

MAX_JSON_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class Unstorable:
    """The first value that cannot be stored: an RFC 6901 pointer below the value, and why."""

    pointer: str
    reason: str


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored, or None. Fast for the common case (ASCII without NUL)."""
    if "\x00" in text:
        return "contains the NUL character (U+0000), which cannot be stored"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (U+D800–U+DFFF), which is not valid Unicode text"
    return None


def number_problem(number: float) -> str | None:
    """Why a JSON number cannot be stored, or None: a non-finite float or an integer beyond 64
    bits (bool, an int subclass, is always fine)."""
    if isinstance(number, float):
        if not math.isfinite(number):
            return "is not a finite number (NaN and Infinity are not JSON)"
    elif not INT64_MIN <= number <= INT64_MAX:
        return f"is an integer outside the 64-bit range ({INT64_MIN} to {INT64_MAX})"
    return None


def first_unstorable(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Unstorable | None:
    """The first string (key or value) or number that cannot be stored, or a container nested
    too deep.

    `value` is what `json.loads` returns (dicts, lists, strings, numbers, booleans, None).
    """
    if all_storable(value, max_depth):
        return None
    return first_problem(value, max_depth)


def first_problem(value: Any, max_depth: int) -> Unstorable | None:
    """The walk that finds the first problem with its pointer (slower: it builds pointers)."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, pointer, depth = stack.pop()
        if isinstance(item, str):
            reason = text_problem(item)
            if reason:
                return Unstorable(pointer, reason)
        elif isinstance(item, int | float):
            reason = number_problem(item)
            if reason:
                return Unstorable(pointer, reason)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return Unstorable(pointer, f"is nested deeper than {max_depth} levels")
            children: list[tuple[Any, str, int]] = []
            if isinstance(item, dict):
                for key, child in item.items():
                    key_text = str(key)
                    child_pointer = f"{pointer}/{_escape(key_text)}"
                    reason = text_problem(key_text)
                    if reason:
                        return Unstorable(child_pointer, "key " + reason)
                    children.append((child, child_pointer, depth + 1))
            else:
                children = [(child, f"{pointer}/{i}", depth + 1) for i, child in enumerate(item)]
            stack.extend(reversed(children))  # popped in document order
    return None


def all_storable(value: Any, max_depth: int) -> bool:
    """Whether everything in `value` can be stored, answered without building pointers: the
    common case, on every request body and imported row. False for anything unusual (subclasses
    of str or int, say), which the full walk of `first_unstorable` then settles. Measured on a
    submit of 20 boxes (140 values): the full walk alone took 560 µs, this pass takes about a
    tenth of that."""
    if type(value) is not dict and type(value) is not list:
        return _storable_scalar(value)
    containers: list[tuple[Any, int]] = [(value, 0)]
    while containers:
        container, depth = containers.pop()
        if depth >= max_depth:
            return False
        if type(container) is dict:
            for key in container:
                if type(key) is not str or not _storable_text(key):
                    return False
            items = container.values()
        else:
            items = container
        for item in items:
            kind = type(item)
            if kind is str:
                if not _storable_text(item):
                    return False
            elif kind is dict or kind is list:
                containers.append((item, depth + 1))
            elif not _storable_scalar(item):
                return False
    return True


def _storable_text(text: str) -> bool:
    return "\x00" not in text and (text.isascii() or text_problem(text) is None)


def _storable_scalar(item: Any) -> bool:
    kind = type(item)
    if kind is int:
        return bool(INT64_MIN <= item <= INT64_MAX)
    if kind is float:
        return math.isfinite(item)
    if kind is str:
        return _storable_text(item)
    return item is None or kind is bool
