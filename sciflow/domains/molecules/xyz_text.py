"""The text layout of (extended) XYZ files, read without ASE: where each frame's atom-count line and comment
stand. ASE's reader stops silently at a blank line before or between frames; ``check_frame_count`` compares what it
read with what the file announces (used by ``sciflow.io`` and the molecule readers alike)."""
from __future__ import annotations

from pathlib import Path

from ...core.errors import InputError

__all__ = ["check_frame_count", "raw_comments"]


def raw_comments(path: Path) -> list[tuple[int, str]]:
    """(line number of the atom count, comment line) of each frame, as written."""
    try:
        return _comment_lines(path)
    except UnicodeDecodeError as e:
        raise InputError(f"path: {str(path)!r} is not an XYZ text file (byte {e.start} is not {e.encoding} "
                         "text; a binary file?)") from None


def check_frame_count(path: str | Path, n_read: int, raw: list[tuple[int, str]] | None = None, *,
                      what: str = "xyz") -> None:
    """ASE's XYZ reader stops silently at a blank line before or between frames: refuse a file of which it read
    fewer frames (``n_read``) than the file's atom-count lines announce, naming the line where it stopped."""
    raw = raw_comments(Path(path)) if raw is None else raw
    if n_read < len(raw):
        raise InputError(f"{what}: {path} has {len(raw)} frames by its atom-count lines, but the XYZ reader "
                         f"stops after {n_read}: frame {n_read} (atom count on line {raw[n_read][0]}) follows a "
                         "blank line or malformed text; remove blank lines before and between frames")


def _comment_lines(path: Path) -> list[tuple[int, str]]:
    out = []
    with open(path) as fh:
        lines = enumerate(fh, start=1)
        for no, line in lines:
            if not line.strip():
                continue
            try:
                n = int(line.split()[0])
            except ValueError:
                raise InputError(f"path: {str(path)!r} is not an XYZ file (expected an atom count, got "
                                 f"{line.strip()[:40]!r})") from None
            out.append((no, next(lines, (0, ""))[1].rstrip("\n")))
            for _ in range(n):
                next(lines, None)
    return out
