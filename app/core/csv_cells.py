"""CSV cells a spreadsheet shows as text instead of running them (CSV injection).

Spreadsheets treat a cell that starts with `=`, `+`, `-` or `@` as a formula (`=HYPERLINK(…)`,
`@SUM(…)`, `-2+3+cmd|' /C calc'!A0`), and some strip a leading tab or carriage return before
looking. Exports carry text typed by clients and annotators, so, following OWASP's recipe
(https://owasp.org/www-community/attacks/CSV_Injection), such a cell is prefixed with a single
quote, which spreadsheets show as text. The csv module quotes cells with delimiters, quotes or
line breaks, which covers the rest of the recipe.

A plain decimal number (`-12`, `+0.5`, `-1e-3`) is left as it is: it holds no formula, and every
negative number of an imported CSV dataset (all strings) would otherwise come back altered.
Anything else starting with those characters is neutralised, `-1+2` included.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def spreadsheet_safe(text: str) -> str:
    """`text`, with a `'` in front if a spreadsheet would take it for a formula."""
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text
