"""Atomic file output: write to a temporary file beside the target, then rename over it."""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["NpzReader", "atomic_path", "atomic_write_json", "atomic_write_text", "changed_keys", "check_writable",
           "file_fingerprint", "keep_settings", "listed_files", "open_npz", "plain_json", "read_text_file",
           "remove_stale_temporaries"]


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path``, on error it is removed.

    ``suffix`` (default: the target's) lets writers that choose a format by extension see the right one.
    """
    target = Path(path)
    _check_target(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp" + (suffix if suffix is not None
                                                                                 else target.suffix),
                                   dir=target.parent)
    except OSError as e:                # a read-only or special file system (/proc), no permission, disk full
        from .errors import InputError
        raise InputError(f"{target}: cannot write there ({e.strerror or type(e).__name__})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _fsync_file(tmp_path)            # the data on disk before the rename makes it the target
        os.chmod(tmp_path, _mode_for(target))
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)            # the rename itself survives a power loss


def _fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk (the writer has closed it; reopening sees the same file). Opened for
    writing, which Windows needs to sync; a file that cannot be synced (EINVAL, EROFS: special files, some
    file systems) is let be, a failed sync (EIO, ENOSPC) raises before the rename."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in _CANNOT_SYNC:
            raise
    finally:
        os.close(fd)


_CANNOT_SYNC = (22, 30)    # EINVAL, EROFS (the same numbers on Linux, macOS and Windows; core imports no errno)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename) to the disk; skipped where folders cannot be opened or synced
    (Windows, some network file systems)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_target(target: Path) -> None:
    """``InputError`` naming ``target`` when it is an existing folder or something on the way to it is a file
    (the commands check their output options the same way while parsing; this is the backstop for every other
    writer, instead of a raw IsADirectoryError / FileExistsError / NotADirectoryError)."""
    from .errors import InputError
    if target.is_dir():
        raise InputError(f"{target}: is an existing folder; cannot write a file there")
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{target}: cannot write there, {parent} is a file, not a folder")
            return


def check_writable(path: str | os.PathLike, field: str) -> Path:
    """``InputError`` naming ``field`` unless a file can be written at ``path`` later (by ``atomic_path``): not an
    existing folder, no file on the way to it, and its nearest existing folder writable. Creates nothing, so a
    long run can check where it will save before its first step."""
    from .errors import InputError
    target = Path(path)
    try:
        _check_target(target)
    except InputError as e:
        raise InputError(f"{field}: {e}") from None
    folder = next(p for p in target.absolute().parents if p.exists())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{field}: {target}: cannot write there, {folder} is not writable")
    return target


def _mode_for(target: Path) -> int:
    """Permissions a plain ``open(target, "w")`` would give: the existing file's, else 0o666 less the umask
    (the temporary file is created 0o600, which would otherwise stick)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_json(path: str | os.PathLike, obj: Any, *, strict: bool = True) -> Path:
    """Write ``obj`` as JSON. ``strict`` (the default, for everything a user reads) writes standard JSON that
    any reader accepts: a value that is not finite (NaN, +-inf) becomes ``null`` and numpy / torch numbers and
    arrays become plain numbers and lists. ``strict=False`` keeps Python's NaN/Infinity tokens, for state files
    only sciflow reads back."""
    if not strict:
        return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
    text = json.dumps(plain_json(obj), indent=2, sort_keys=True, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def plain_json(obj: Any) -> Any:
    """``obj`` with only JSON types: non-finite floats as None, numpy/torch scalars and arrays as numbers and
    lists, tuples and sets as lists, mapping keys as strings; anything else as its ``str``."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): plain_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [plain_json(v) for v in (sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj)]
    tolist = getattr(obj, "tolist", None)       # numpy / torch scalars and arrays
    if callable(tolist):
        return plain_json(tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def changed_keys(before: Any, now: Any, prefix: str = "") -> list[str]:
    """Dotted names of the entries that differ between two nested mappings (a key on one side only counts)."""
    if isinstance(before, dict) and isinstance(now, dict):
        return [c for k in sorted(set(before) | set(now), key=str)
                for c in changed_keys(before.get(k, _MISSING), now.get(k, _MISSING), f"{prefix}{k}.")]
    return [] if before == now else [prefix.rstrip(".")]


_MISSING = object()


#: files larger than this are fingerprinted by size and modification time, not by their contents
HASH_LIMIT = 256 * 2**20


def file_fingerprint(path: str | os.PathLike) -> str:
    """``sha256 <hex>`` of a file's contents (``size N mtime_ns M`` above ``HASH_LIMIT``): what tells a resumed run
    that an input file is still the one it began with."""
    import hashlib
    p = Path(path)
    st = p.stat()
    if st.st_size > HASH_LIMIT:
        return f"size {st.st_size} mtime_ns {st.st_mtime_ns}"
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"sha256 {h.hexdigest()}"


def keep_settings(path: str | os.PathLike, settings: dict[str, Any], refusal: str, *, record: bool = True) -> None:
    """A folder that resumes work records the settings it was made with in ``path`` the first time; a later
    run with other settings raises ``InputError(refusal)`` before any work, ``{changed}`` in it replaced by the
    names of the changed settings. ``record=False`` only checks."""
    from .errors import InputError
    p = Path(path)
    if p.is_file():
        try:
            before = json.loads(p.read_text())
        except (ValueError, OSError) as e:          # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise InputError(f"{p}: the record of the settings this folder was made with is damaged "
                             f"({type(e).__name__}); remove it only if the folder's files were made with the "
                             f"settings you give now, else use another folder") from None
        changed = changed_keys(before, plain_json(settings))
        if changed:
            raise InputError(refusal.replace("{changed}", ", ".join(changed[:8])))
        return
    if record:
        atomic_write_json(p, settings)


class NpzReader:
    """An open ``.npz`` archive (``open_npz``) whose arrays are read with errors that name the field, the file and
    the array: an object array (pickled Python objects, e.g. a ragged list saved as ``dtype=object``) is refused,
    as loading a pickle can run code, and a damaged member is reported as such instead of a raw numpy error."""

    def __init__(self, archive: Any, path: Path, field: str) -> None:
        self._z, self.path, self.field = archive, path, field

    @property
    def files(self) -> list[str]:
        return list(self._z.files)

    def __contains__(self, key: object) -> bool:
        return key in self._z.files

    def __getitem__(self, key: str) -> Any:
        from .errors import InputError
        if key not in self._z.files:
            raise KeyError(key)
        try:
            return self._z[key]
        except Exception as e:      # ValueError (object array), OSError / EOFError / BadZipFile (damaged member)
            if not isinstance(e, (OSError, ValueError, EOFError)) and type(e).__name__ != "BadZipFile":
                raise
            why = ("an object array (pickled Python objects are not read: loading a pickle can run code); store "
                   "plain numbers or strings" if "Object arrays" in str(e) or "pickle" in str(e) else
                   f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else 'empty'})")
            raise InputError(f"{self.field} {self.path}: array {key!r} is {why}") from None

    def close(self) -> None:
        self._z.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_npz(path: str | os.PathLike, field: str, want: str) -> NpzReader:
    """Open an ``.npz`` archive for reading (use it as a context manager), refusing with an InputError that names
    ``field``, the file and what was expected (``want``, e.g. "a walk .npz written by `sciflow scattering data`"):
    a missing file, one that is no npz archive (or holds pickled objects), a single ``.npy`` array. Its arrays are
    read through ``NpzReader``, which names the array and the file when one cannot be read."""
    import numpy as np

    from .errors import InputError
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{field}: no file at {p}")
    try:
        z = np.load(p, allow_pickle=False)
    except Exception as e:       # OSError, ValueError, EOFError or zipfile.BadZipFile (core imports no zipfile)
        if not isinstance(e, (OSError, ValueError, EOFError)) and type(e).__name__ != "BadZipFile":
            raise
        why = "it holds pickled objects or is no .npz archive" if "pickle" in str(e) else \
            f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else 'empty file'}"
        raise InputError(f"{field}: {p} is not {want} ({why})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise InputError(f"{field}: {p} is a single array (.npy), not {want}")
    return NpzReader(z, p, field)


def read_text_file(path: str | os.PathLike, field: str, kind: str) -> str:
    """The UTF-8 text of the file ``path``, read for the setting ``field``; a missing file or one that is not
    UTF-8 text (``kind`` says what text it should be) raises InputError naming the field and the file."""
    from .errors import InputError
    p = Path(path)
    if p.is_dir():
        raise InputError(f"{field}: {p} is a folder; give a file in it")
    if not p.is_file():
        raise InputError(f"{field}: no file at {p}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{field} {p}: not a UTF-8 text file (byte {e.start}); {kind}") from None


def listed_files(folder: str | os.PathLike, suffixes: tuple[str, ...], *, recursive: bool = False) -> list[Path]:
    """The files of ``folder`` (and below it with ``recursive``) whose suffix is one of ``suffixes`` (lower case,
    matched case-insensitively), sorted, leaving out hidden names: a name with a leading dot, such as the
    temporary file an interrupted ``atomic_path`` write leaves behind, is neither read nor fingerprinted."""
    root = Path(folder)
    found = root.rglob("*") if recursive else root.iterdir()
    listed = sorted(q for q in found if q.suffix.lower() in suffixes
                    and not any(part.startswith(".") for part in q.relative_to(root).parts))
    for q in listed:
        if q.is_symlink() and not q.exists():         # a dangling link: an input that is not there
            from .errors import InputError
            raise InputError(f"{q}: a link to {os.readlink(q)}, which does not exist; restore it or remove the link")
    return [q for q in listed if q.is_file()]


#: the names ``atomic_path`` gives its temporary files: ".<stem>.<8 random characters>.tmp<suffix>"
_TEMPORARY = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp(\.[^.]+)*$")


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that writes killed mid-way (SIGKILL, power loss) left under ``folder``;
    returns them. A finished write never leaves one, so only an output folder no process is writing to may be
    cleaned this way (a workflow's, before it starts)."""
    root = Path(folder)
    if not root.is_dir():
        return []
    stale = [q for q in root.rglob(".*.tmp*") if q.is_file() and _TEMPORARY.match(q.name)]
    for q in stale:
        q.unlink(missing_ok=True)
    return stale


@contextmanager
def output_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (its hidden ``.lock`` file) while a run writes there: a second run
    on the same folder is refused at once instead of deleting the first one's unfinished writes and redoing its
    work. The lock goes with the process (a killed run leaves no stale lock). POSIX only; elsewhere no lock."""
    try:
        import fcntl
    except ImportError:                                # Windows: no flock
        yield
        return
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            from .errors import InputError
            raise InputError(_in_use(root, f)) from None
        except OSError as e:                           # a file system without flock (some NFS / Lustre mounts)
            import warnings
            warnings.warn(f"output: {root}: cannot lock it ({e.strerror or e}); running without the lock, so "
                          "make sure no other run writes there", stacklevel=3)
            yield
            return
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _in_use(root: Path, f: Any) -> str:
    f.seek(0)
    holder = f.read().strip() or "another process"
    return f"output: {root} is in use by another run ({holder}); wait for it to finish, or choose another output folder"


def output_in_use(folder: str | os.PathLike) -> str | None:
    """What ``output_lock`` would refuse with now (the message), or None: a probe that creates nothing (for
    ``sciflow validate``)."""
    lock = Path(folder) / ".lock"
    try:
        import fcntl
        f = open(lock, encoding="utf-8")               # noqa: SIM115 - closed below, after the probe
    except (ImportError, OSError):
        return None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _in_use(Path(folder), f)
        except OSError:
            return None
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return None


def read_json_lines(path: str | os.PathLike, what: str = "path") -> list[Any]:
    """The records of an append-only JSON-lines file (a resumable job's results); [] when there is none. A last
    line cut short (a full disk, a power loss mid-append) is removed from the file with a warning, so the job
    redoes that record and later appends start on a line of their own; a damaged line before it is an
    ``InputError`` naming ``what`` and the line."""
    p = Path(path)
    if not p.is_file():
        return []
    numbered = [(n, ln) for n, ln in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if ln.strip()]
    out = []
    for k, (n, line) in enumerate(numbered):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if k < len(numbered) - 1:
                from .errors import InputError
                raise InputError(f"{what}: {p}: line {n} is not JSON; the file is damaged") from None
            import warnings
            warnings.warn(f"{what}: {p}: its last line was cut short; it is removed and redone", stacklevel=2)
            atomic_write_text(p, "".join(ln + "\n" for _, ln in numbered[:-1]))
    return out
