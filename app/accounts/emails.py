"""Email identity: when two typed addresses are the same account, and which are refused.

An account keeps its email as typed (trimmed) and is found by its *key*: the address under
Unicode NFKC (compatibility forms folded, so the fullwidth `ｋatee@example.com` is
`katee@example.com`) and then `casefold` (full case folding: `İ`, `ß` and `K` (Kelvin) fold as
Unicode says, where `.lower()` altered `İ` into two characters and left others apart). The key is
unique (`users.email_key`), so no second account can register under another form of the same
address, and login, invites and the login throttle all compare keys.

A local part that mixes scripts (Latin with Cyrillic or Greek letters, e.g. a Cyrillic `а` among
Latin letters) is refused at signup and invite: such addresses exist to look like someone else's.
Letters of one script (all Cyrillic, all Latin), digits, punctuation and scripts without
look-alikes (kanji with kana) are fine.
"""

from __future__ import annotations

import unicodedata

# The alphabets whose letters look alike (homoglyphs), told apart by the first word of their
# Unicode name. Other scripts are not counted: Japanese mixes kanji and kana by nature.
_CONFUSABLE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE", "COPTIC")


def email_key(email: str) -> str:
    """The identity of an address: trimmed, NFKC, case-folded."""
    return unicodedata.normalize("NFKC", email.strip()).casefold()


def _script(char: str) -> str | None:
    """The confusable script of a letter (by its Unicode name), or None."""
    if not unicodedata.category(char).startswith("L"):
        return None
    first = unicodedata.name(char, "").split(" ", 1)[0]
    return first if first in _CONFUSABLE_SCRIPTS else None


def mixed_script_problem(email: str) -> str | None:
    """Why the local part of `email` is refused (it mixes scripts), or None."""
    local = unicodedata.normalize("NFKC", email.strip()).rpartition("@")[0]
    scripts = sorted({s for s in map(_script, local) if s is not None})
    if len(scripts) > 1:
        return "the part before @ mixes scripts (" + ", ".join(s.title() for s in scripts) + ")"
    return None
