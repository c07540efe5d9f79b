"""Numeric CSV text parsed and written as whole blocks (no per-row Python code in the common case): the readers
find the first bad record with vectorised checks, so an error still names its line and column; the writers
format every value at once. Used by the snapshot CSV reader and the MMSB trajectory export."""
from __future__ import annotations

import csv
import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["csv_body", "float_cells", "numeric_records", "read_csv_records", "read_csv_text",
           "simple_numeric_block"]


def read_csv_records(fh: Any) -> tuple[list[str] | None, list[list[str]], Exception | None]:
    """(header, data records, deferred error) of an open CSV file. A ``csv.Error`` or ``UnicodeDecodeError``
    met part way is returned, not raised, with the records read before it: the caller reports a problem in
    those first (as reading row by row would), then raises it."""
    reader = csv.reader(fh)
    header = next(reader, None)
    records: list[list[str]] = []
    try:
        records.extend(reader)                     # C-level iteration; keeps the records read before an error
    except (csv.Error, UnicodeDecodeError) as e:
        return header, records, e
    return header, records, None


def _blank(records: list[list[str]]) -> np.ndarray:
    """Per record: no field, or only white space in every field (joined, so no per-row Python code)."""
    return np.fromiter(map(len, map(str.strip, map("".join, records))), np.intp, len(records)) == 0


def _pick(records: list[list[str]], idx: np.ndarray) -> list[list[str]]:
    return list(map(records.__getitem__, idx.tolist()))


def _first_unparseable(block: np.ndarray) -> int:
    """Index of the first row of an object array of strings that ``float()`` refuses (the whole block fails):
    bisection, ~2 conversions of the block in all."""
    lo, hi = 0, len(block)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            block[lo:mid].astype(np.float64)
        except ValueError:
            hi = mid
        else:
            lo = mid
    return lo


def _parse_until_bad(block: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, int | None]:
    """(float64 values of the rows before the first row ``float()`` refuses, that row's index or None):
    converted chunk by chunk up to the failing chunk, which is bisected."""
    parts = [np.zeros((0, block.shape[1]))]
    for start in range(0, len(block), chunk):
        part = block[start:start + chunk]
        try:
            parts.append(part.astype(np.float64))
        except ValueError:
            j = start + _first_unparseable(part)
            parts.append(block[start:j].astype(np.float64))
            return np.concatenate(parts), j
    return np.concatenate(parts), None


def numeric_records(where: str, records: list[list[str]], n_fields: int, use: Sequence[int], names: Sequence[str],
                    *, finite: bool = True, first_line: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(values (M, len(use)) float64, line numbers (M,)) of CSV records, parsed as one block.

    Blank records (no field, or white space only) are skipped but keep their line number (``first_line`` is
    the line of ``records[0]``). The first problem in file order raises InputError starting with ``where``
    and naming the line: a record with another number of fields than ``n_fields``, a cell of the ``use``
    columns that ``float()`` refuses, or (``finite``) a NaN/inf there, naming the column(s) by ``names``."""
    m = len(records)
    use = list(use)
    lens = np.fromiter(map(len, records), np.intp, m)
    full = lens == n_fields
    blank = lens == 0
    other = np.flatnonzero(~full & ~blank)            # wrong field count: blank (white space) or ragged
    if other.size:
        blank[other] = _blank(_pick(records, other))
    ragged = ~full & ~blank
    first_bad, kind = (int(np.argmax(ragged)), "ragged") if ragged.any() else (m, "")
    full_idx = np.flatnonzero(full)
    rows = records if full_idx.size == m else _pick(records, full_idx)
    block = np.array(list(itertools.chain.from_iterable(rows)), dtype=object).reshape(len(rows), n_fields)[:, use]
    try:
        values = block.astype(np.float64)
    except ValueError:                                 # a bad cell, or a blank record with all its fields
        fb = _blank(rows)
        blank[full_idx[fb]] = True
        full_idx, block = full_idx[~fb], block[~fb]
        values, j = _parse_until_bad(block)
        if j is not None:
            if full_idx[j] < first_bad:
                first_bad, kind = int(full_idx[j]), "text"
            full_idx = full_idx[:j]
    if finite and values.size:
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any() and full_idx[np.argmax(bad)] < first_bad:
            first_bad, kind = int(full_idx[np.argmax(bad)]), "finite"
    if kind:
        n, row = first_bad + first_line, records[first_bad]
        if kind == "ragged":
            raise InputError(f"{where}: line {n} has {len(row)} fields, the header {n_fields}: {row[:8]}")
        if kind == "text":
            raise InputError(f"{where}: line {n} is not numeric in the columns used: {row}")
        vals = values[np.searchsorted(full_idx, first_bad)]
        bad_cols = [c for c, ok in zip(names, np.isfinite(vals).tolist()) if not ok]
        raise InputError(f"{where}: line {n} has a non-finite value (NaN or inf) in column(s) {bad_cols}")
    return values, full_idx + first_line


def read_csv_text(p: Path) -> str | None:
    """The whole text of a UTF-8 file (a byte-order mark dropped), or None when it does not decode: the
    caller then reads it record by record, so that problems in the rows before the bad byte come first."""
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            return fh.read()
    except UnicodeDecodeError:
        return None


def simple_numeric_block(text: str, n_fields: int, use: Sequence[int], *,
                         finite: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
    """(values (M, len(use)) float64, line numbers (M,)) of the data rows (the lines after the first) of a plain
    CSV text, parsed by ``np.loadtxt`` in C, empty lines skipped; None whenever the text is not plain or
    anything is off (quotes, a line of white space, a row with another number of fields, a cell ``loadtxt``
    refuses, NaN/inf with ``finite``): the caller then takes the csv-module path (``numeric_records``), which
    says exactly what and where. ``loadtxt`` accepts a subset of what ``float()`` does and reads it to the same
    value, so both paths agree on every file this one accepts."""
    if '"' in text or "\x00" in text:
        return None
    if "\r" in text:                              # the csv module ends a record at \r\n, \r or \n
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")[1:]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or max(map(len, lines)) > csv.field_size_limit():
        return None
    commas = np.fromiter(map(str.count, lines, itertools.repeat(",")), np.intp, len(lines))
    ok = commas == n_fields - 1
    line_no = np.arange(2, 2 + len(lines))
    if not ok.all():
        empty = np.fromiter(map(len, lines), np.intp, len(lines)) == 0
        if (~ok & ~empty).any():
            return None
        lines, line_no = _pick(lines, np.flatnonzero(ok)), line_no[ok]
        if not lines:
            return None
    try:
        values = np.loadtxt(lines, dtype=np.float64, delimiter=",", comments=None, quotechar=None,
                            usecols=list(use), ndmin=2)
    except ValueError:
        return None
    if values.shape[0] != len(lines) or (finite and not np.isfinite(values).all()):
        return None
    return values, line_no


def float_cells(x: np.ndarray) -> np.ndarray:
    """``repr(float(v))`` of every value of a 2-D array, as an object array of the same shape."""
    x = np.asarray(x, dtype=np.float64)
    return np.array(list(map(float.__repr__, x.ravel().tolist())), dtype=object).reshape(x.shape)


def csv_body(cells: np.ndarray, line_end: str = "\r\n") -> str:
    """The rows of a 2-D object array of strings that need no quoting, as ``csv.writer`` writes them."""
    n, k = cells.shape
    if n == 0:
        return ""
    seps = np.array([","] * (k - 1) + [line_end], dtype=object)
    out = np.empty((n, 2 * k), dtype=object)
    out[:, 0::2] = cells
    out[:, 1::2] = seps
    return "".join(out.ravel().tolist())
