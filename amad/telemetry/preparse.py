"""Pre-parse checks on a telemetry batch's bytes, before any table is built.

``sniff_format`` tells CSV from Parquet and refuses what no table validator can judge (an empty
file, another binary format, NUL bytes, a Parquet file cut short); ``check_csv_layout`` refuses
non-UTF-8 bytes, a wrong delimiter, a header without rows and a truncated last line. They never
hold the batch as text: the bytes are checked as UTF-8 a chunk at a time and only a head and a
tail are decoded. A refusal is a ``DataValidationError`` (``failure``) whose report names the
failed check, shaped like the suite's. ``amad.telemetry.schema.read_batch`` calls them.
"""

from __future__ import annotations

import codecs
import csv
from typing import Any

from amad.errors import DataValidationError

PARQUET_MAGIC = b"PAR1"
_BINARY_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"\x89PNG": "png",
    b"%PDF": "pdf",
    b"\x7fELF": "elf",
    b"BZh": "bzip2",
    b"\xfd7zXZ": "xz",
}
_OTHER_DELIMITERS = (";", "\t", "|")
_UTF8_CHUNK = 1 << 20  # bytes decoded at a time by the encoding check (the text is not kept)
_WINDOW = 1 << 16  # bytes first decoded at the head and tail for the CSV layout checks


def failure(check: str, message: str, **details: Any) -> DataValidationError:
    """A rejection before Great Expectations runs, with a report shaped like the suite's."""
    error = {"check": check, "severity": "error", "column": None, "message": message, **details}
    report = {"success": False, "stage": "pre-parse", "errors": [error], "warnings": []}
    return DataValidationError(f"{check}: {message}", report)


def sniff_format(data: bytes, name: str = "batch") -> str:
    """``"parquet"`` or ``"csv"``; anything else raises with the failed check named."""
    if _blank(data, len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0):
        raise failure("empty_file", f"{name} is empty ({len(data)} bytes, blank or only a BOM)")
    if data.startswith(PARQUET_MAGIC):
        if len(data) < 12 or not data.endswith(PARQUET_MAGIC):
            raise failure("truncated_file", f"{name}: Parquet footer missing (file cut short)")
        return "parquet"
    for magic, kind in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise failure("not_csv_or_parquet", f"{name} is a {kind} file, not CSV or Parquet")
    if b"\x00" in data[:65536]:
        raise failure("not_csv_or_parquet", f"{name} holds NUL bytes: binary, not CSV or Parquet")
    return "csv"


def _blank(data: bytes, start: int) -> bool:
    """Nothing but whitespace from byte ``start`` on (a full scan only if it starts blank)."""
    return not data[start : start + 4096].strip() and not data[start:].strip()


def _check_utf8(data: bytes, name: str) -> int:
    """Refuse bytes that are not UTF-8, decoded a chunk at a time (the text is never held);
    returns the length of a leading byte-order mark."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        for start in range(0, len(data), _UTF8_CHUNK):
            decoder.decode(data[start : start + _UTF8_CHUNK])
        decoder.decode(b"", final=True)
        return len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    except UnicodeDecodeError:
        try:  # once more as a whole, for the failure's offset in the batch
            data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            at, near = exc.start, data[exc.start : exc.start + 4]
            raise failure("encoding", f"{name}: not valid UTF-8 at byte {at} ({near!r})",
                          byte_offset=at) from exc  # fmt: skip
        raise


def _first_line(data: bytes, bom: int) -> tuple[str, str, int]:
    """The text's first non-whitespace character, its first line (``str.splitlines()[0]``) and
    the byte offset of the next line, decoded from a prefix that grows until they are known."""
    size = _WINDOW
    while True:
        whole = size >= len(data)
        head = codecs.getincrementaldecoder("utf-8")().decode(data[bom:size], final=whole)
        stripped, lines = head.lstrip(), head.splitlines(keepends=True)
        if whole or (stripped and lines and len(lines[0]) < len(head)):
            break  # a line end and a character after it are in view (or the whole text)
        size *= 4
    first = lines[0]  # the caller refused a blank text
    return stripped[:1], first.splitlines()[0], bom + len(first.encode())


def _last_row(data: bytes, body: int) -> str | None:
    """The last non-blank line from byte ``body`` on (None without one); decoded from a suffix
    that grows until it holds one complete such line or reaches ``body``."""
    size = _WINDOW
    while True:
        start = max(body, len(data) - size)
        while start > body and data[start] & 0xC0 == 0x80:  # inside a character: step back
            start -= 1
        lines = data[start:].decode("utf-8").splitlines()
        complete = lines if start == body else lines[1:]  # the first may be cut off
        last = next((ln for ln in reversed(complete) if ln.strip()), None)
        if last is not None or start == body:
            return last
        size *= 4


def check_csv_layout(data: bytes, name: str) -> None:
    """The CSV structure checks on UTF-8 bytes: only the head and tail are ever decoded."""
    bom = _check_utf8(data, name)
    if _blank(data, bom):  # sniff_format refuses these first; here for direct callers
        raise failure("empty_file", f"{name} is empty ({len(data)} bytes, blank or only a BOM)")
    first_char, header, body = _first_line(data, bom)
    if first_char in ("{", "[", "<"):
        raise failure("not_csv_or_parquet", f"{name} looks like JSON/XML, not CSV or Parquet")
    if "," not in header:
        found = [d for d in _OTHER_DELIMITERS if d in header]
        if found:
            raise failure(
                "delimiter", f"{name}: header is delimited by {found[0]!r}; the contract uses ','"
            )
        raise failure("not_csv_or_parquet", f"{name}: first line has no ',' delimited header")
    last_row = _last_row(data, body)
    if last_row is None:
        raise failure("header_only", f"{name}: a header line and no data rows")
    n_header = len(next(csv.reader([header])))
    last = next(csv.reader([last_row]))
    if not data.endswith((b"\n", b"\r")) and len(last) != n_header:
        raise failure(
            "truncated_file",
            f"{name}: last line has {len(last)} of {n_header} fields and no line end (cut short)",
        )
