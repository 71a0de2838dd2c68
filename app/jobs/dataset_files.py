"""Reading dataset files row by row: CSV, JSON array or JSONL, optionally gzip, with bounded
memory, whatever the file holds.

A reader yields each row as parsed (or a RowError saying why the line is not a row, or BLANK)
with its line (element) number, and raises a file-level problem when it cannot go on: not UTF-8
(a UTF-8 byte order mark is fine, UTF-16 and UTF-32 are named), invalid gzip, a CSV line or a JSON
array element too long to be a row, or nested too deeply to parse (Python's JSON parser recurses:
a RecursionError is caught here, never raised). A gzip upload is expanded up to a limit. Numbers
JSON has no room for (NaN, Infinity, 1e400 from the standard parser) come out as NOT_FINITE, which
nothing can serialize, so their row is refused rather than silently changed. What a row means is
`importing`'s business.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import IO, Any

import orjson

from app.core.errors import json_pointer
from app.core.storable import MAX_JSON_DEPTH, first_unstorable
from app.jobs.errors import DecompressedTooLarge, ExternalIdFieldMissing, UnreadableFile

MAX_ROW_BYTES = 1_000_000
READ_CHUNK = 1 << 20


class ImportFormat(StrEnum):
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


class RowError(Exception):
    def __init__(self, detail: str, pointer: str | None = None, *, unusable: bool = False) -> None:
        super().__init__(detail)
        self.detail, self.pointer = detail, pointer
        self.unusable = unusable  # the line is not a row at all (it counts against the limit)


def detect_format(filename: str | None, content_type: str | None) -> ImportFormat | None:
    name = (filename or "").lower().removesuffix(".gz")
    for suffix, fmt in (
        (".csv", ImportFormat.csv),
        (".jsonl", ImportFormat.jsonl),
        (".ndjson", ImportFormat.jsonl),
        (".json", ImportFormat.json),
    ):
        if name.endswith(suffix):
            return fmt
    ctype = (content_type or "").split(";")[0].strip().lower()
    return {
        "text/csv": ImportFormat.csv,
        "application/json": ImportFormat.json,
        "application/x-ndjson": ImportFormat.jsonl,
        "application/jsonl": ImportFormat.jsonl,
        "application/x-jsonlines": ImportFormat.jsonl,
    }.get(ctype)


class _BoundedGunzip(io.RawIOBase):
    """A gzip stream's decompressed bytes, refusing to produce more than `limit`."""

    def __init__(self, compressed: IO[bytes], limit: int) -> None:
        self._gzip = gzip.GzipFile(fileobj=compressed, mode="rb")
        self._left = limit
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if self._left == 0:
            # Everything allowed was read: one more byte means the file is larger.
            if self._gzip.read(1):
                raise DecompressedTooLarge(
                    f"The upload expands to more than {self._limit} bytes when decompressed "
                    "(TESSERA_MAX_DECOMPRESSED_BYTES)"
                )
            return 0
        count = self._gzip.readinto(view[: min(len(view), self._left)])
        self._left -= count
        return count


class _Borrowed(io.RawIOBase):
    """The caller's file, read but never closed (the readers wrapped around it close what they
    wrap when they are done)."""

    def __init__(self, binary: IO[bytes]) -> None:
        self._binary = binary

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._binary.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def open_upload(binary: IO[bytes], max_decompressed_bytes: int | None = None) -> IO[bytes]:
    """A buffered view of an upload, gunzipped (up to `max_decompressed_bytes`) when it starts
    with the gzip magic bytes. Closing it leaves `binary` open."""
    buffered: Any = io.BufferedReader(_Borrowed(binary), READ_CHUNK)
    if buffered.peek(2)[:2] == b"\x1f\x8b":
        limit = max_decompressed_bytes if max_decompressed_bytes is not None else 1 << 62
        buffered = io.BufferedReader(_BoundedGunzip(buffered, limit), READ_CHUNK)
    return buffered  # type: ignore[no-any-return]


# The reader yields this for a blank line (or a CSV row of empty cells): not a row, but counted.
BLANK: Any = object()
_FOREIGN_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def read_rows(
    binary: IO[bytes], fmt: ImportFormat, *, csv_columns: Sequence[str] = ()
) -> Iterator[tuple[int, Any]]:
    """(line or element number, parsed row, RowError or BLANK) for each row of the
    (decompressed) file. Raises UnreadableFile when the file cannot be parsed any further, and
    ExternalIdFieldMissing when a CSV header lacks one of `csv_columns`."""
    try:
        start = binary.peek(4)[:4] if hasattr(binary, "peek") else b""
        for bom, encoding in _FOREIGN_BOMS:
            if start.startswith(bom):
                raise UnreadableFile(f"The file is {encoding} text; save it as UTF-8")
        if fmt is ImportFormat.jsonl:
            yield from _jsonl_rows(binary)
            return
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        if fmt is ImportFormat.csv:
            yield from _csv_rows(text, csv_columns)
        else:
            yield from _json_array_rows(text)
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"The file is not valid UTF-8 ({exc.reason})") from None
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise UnreadableFile(f"The file is truncated or not valid gzip: {exc}") from None


def _bounded_lines(text: IO[str]) -> Iterator[str]:
    """The lines of a text stream, refusing one longer than MAX_ROW_BYTES characters before it
    is read whole."""
    number = 0
    while line := text.readline(MAX_ROW_BYTES + 1):
        number += 1
        if len(line) > MAX_ROW_BYTES:
            raise UnreadableFile(f"line {number} is longer than {MAX_ROW_BYTES} characters")
        yield line


def _csv_rows(text: IO[str], required: Sequence[str]) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(_bounded_lines(text))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise UnreadableFile(f"line 1: {exc}") from None
    names = [h.strip() for h in header]
    if len(set(names)) != len(names) or "" in names:
        raise UnreadableFile("line 1: the CSV header needs unique, non-empty column names")
    missing = [name for name in required if name not in names]
    if missing:
        raise ExternalIdFieldMissing(
            f"The CSV header has no column {missing[0]!r}, declared as the external id",
            errors=[{"line": 1, "pointer": json_pointer([missing[0]]), "detail": "no such column"}],
        )
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(f"line {start}: {exc}") from None
        line, start = start, reader.line_num + 1
        if not any(cells):
            yield line, BLANK  # a blank line, or a spreadsheet's row of empty cells
            continue
        if len(cells) != len(names):
            yield (
                line,
                RowError(f"expected {len(names)} columns, found {len(cells)}", unusable=True),
            )
            continue
        yield line, {name: value for name, value in zip(names, cells, strict=True) if value != ""}


def _jsonl_rows(binary: IO[bytes]) -> Iterator[tuple[int, Any]]:
    number = 0
    while line := binary.readline(MAX_ROW_BYTES + 1):
        number += 1
        if number == 1:
            line = line.removeprefix(codecs.BOM_UTF8)
        if len(line) > MAX_ROW_BYTES:
            while line and not line.endswith(b"\n"):  # skip the rest without holding it
                line = binary.readline(READ_CHUNK)
            yield number, RowError(f"row larger than {MAX_ROW_BYTES} bytes", unusable=True)
            continue
        if not line.strip():
            yield number, BLANK
            continue
        yield number, _jsonl_row(line)


def _jsonl_row(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:
            return RowError(
                f"the row is nested deeper than {MAX_JSON_DEPTH} levels", "#", unusable=True
            )
        problem = RowError(f"invalid JSON: {exc.msg} at column {exc.colno}", unusable=True)
    try:
        text = line.decode()
    except UnicodeDecodeError:
        return RowError("the line is not valid UTF-8 text (save the file as UTF-8)", unusable=True)
    # orjson refuses unpaired surrogates without saying where; the standard parser takes them,
    # so the row check can point at the string.
    try:
        value = json.loads(text, parse_constant=_not_finite)
    except (ValueError, RecursionError):
        return problem
    return value if first_unstorable(value) is not None else problem


class _NotFinite:
    """Stands for NaN, Infinity or an overflowing number read by the standard JSON parser: JSON
    has no such numbers and orjson cannot serialize them, so the row is refused (silently
    storing them as null would change the data)."""


NOT_FINITE = _NotFinite()


def _not_finite(_: str) -> Any:
    return NOT_FINITE


def _finite_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else NOT_FINITE


_WHITESPACE = re.compile(r"[ \t\r\n]*")


def _json_array_rows(text: IO[str]) -> Iterator[tuple[int, Any]]:
    """Stream the elements of a top-level JSON array without loading the whole file."""
    decoder = json.JSONDecoder(parse_float=_finite_float, parse_constant=_not_finite)
    buf, pos, eof, number = "", 0, False, 0

    def fill() -> bool:
        nonlocal buf, pos, eof
        chunk = text.read(READ_CHUNK)
        if not chunk:
            eof = True
            return False
        buf, pos = buf[pos:] + chunk, 0
        return True

    def skip_ws() -> str:
        nonlocal pos
        while True:
            match = _WHITESPACE.match(buf, pos)
            pos = match.end() if match else pos
            if pos < len(buf):
                return buf[pos]
            if not fill():
                return ""

    if skip_ws() != "[":
        raise UnreadableFile("A JSON dataset must be an array of objects (or use JSONL)")
    pos += 1
    if skip_ws() == "]":
        return
    while True:
        number += 1
        skip_ws()
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError as exc:
                if not eof and len(buf) - pos < MAX_ROW_BYTES * 4 and fill():
                    continue
                raise UnreadableFile(f"element {number}: invalid JSON ({exc.msg})") from None
            except RecursionError:
                # The element's end cannot be found without parsing it: the file stops here.
                raise UnreadableFile(
                    f"element {number} is nested too deeply to read",
                    errors=[
                        {
                            "line": number,
                            "pointer": json_pointer([number - 1]),
                            "detail": "nested too deeply",
                        }
                    ],
                ) from None
            if end == len(buf) and not eof and fill():
                continue  # a number or literal may go on in the next chunk
            break
        pos = end
        yield number, value
        sep = skip_ws()
        if sep == ",":
            pos += 1
        elif sep == "]":
            return
        else:
            raise UnreadableFile(f"after element {number}: expected ',' or ']'")
