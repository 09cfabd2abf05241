"""Finding, verifying and downloading the course's data files.

:func:`fetch` resolves a registry entry (:mod:`course_lib.data.registry`) to a verified local file:

1. the cache: ``$COURSE_DATA_DIR`` if set, else ``$XDG_CACHE_HOME/deep-learning-course`` (or
   ``~/.cache/deep-learning-course``);
2. the local mirror: ``$COURSE_DATA_MIRROR`` if set, else ``<repo root>/../shared/data`` where the
   repo root is the folder that holds the ``course_lib`` package;
3. a download from the entry's URLs (tried in order) into the cache, unless downloads are off
   (``download=False`` or ``COURSE_DATA_OFFLINE=1``).

Both folders use the same layout, ``<folder>/<dataset>/<path>`` (e.g. ``mnist/t10k-labels-idx1-ubyte.gz``).
Every file found is checked against its sha256 (hashes are remembered per process, keyed by
path, size, mtime and inode, so repeated loads do not re-hash). A download is written to a
temporary file in the target folder, hashed while it streams, fsync'ed and moved into place
with :func:`os.replace` only once its checksum is right, so the cache never holds a partial or
corrupted download. Archives (the MovieLens zip, the MR tarball) are downloaded to a temporary
file, and every registered member is extracted the same atomic way, then the archive is deleted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from course_lib.data.registry import REGISTRY, Resource, Source

CACHE_ENV_VAR = "COURSE_DATA_DIR"
MIRROR_ENV_VAR = "COURSE_DATA_MIRROR"
OFFLINE_ENV_VAR = "COURSE_DATA_OFFLINE"
CACHE_FOLDER_NAME = "deep-learning-course"
DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "deep-learning-course-data/0.1 (+python urllib)"


# ------------------------------------------------------------------------------------ errors
class DataError(Exception):
    """Base class of every data-loading error of the course."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data file is in neither the cache nor the mirror and could not be downloaded."""


class ChecksumError(DataError, ValueError):
    """A data file (found locally or just downloaded) does not have an accepted sha256."""


# ------------------------------------------------------------------------------------ places
def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """The cache folder: ``$COURSE_DATA_DIR``, else ``$XDG_CACHE_HOME/deep-learning-course``,
    else ``~/.cache/deep-learning-course``. Downloads go here; it need not exist yet."""
    env = os.environ.get(CACHE_ENV_VAR)
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / CACHE_FOLDER_NAME).absolute()


def mirror_dir() -> Path:
    """The read-only local mirror: ``$COURSE_DATA_MIRROR``, else ``<repo root>/../shared/data``
    (repo root = ``Path(course_lib.__file__).resolve().parents[1]``). It may not exist."""
    env = os.environ.get(MIRROR_ENV_VAR)
    if env:
        return Path(env).expanduser().absolute()
    import course_lib

    return Path(course_lib.__file__).resolve().parents[1].parent / "shared" / "data"


def downloads_allowed(download: bool = True) -> bool:
    """True when a loader may use the network: ``download`` is true and ``COURSE_DATA_OFFLINE``
    is not set to ``1``/``true``/``yes``/``on`` (the environment variable always wins)."""
    return bool(download) and not _truthy(os.environ.get(OFFLINE_ENV_VAR))


# ---------------------------------------------------------------------------------- checksums
_HASH_CACHE: dict[tuple[str, int, int, int, int], str] = {}


def clear_checksum_cache() -> None:
    """Forget the per-process record of files already hashed (tests use it)."""
    _HASH_CACHE.clear()


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in chunks; remembered per process for an unchanged
    file (same resolved path, size, mtime, inode and device)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    digest = _HASH_CACHE.get(key)
    if digest is None:
        with open(path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        _HASH_CACHE[key] = digest
    return digest


def _describe(resource: Resource) -> str:
    size = f", {resource.size:,} bytes" if resource.size is not None else ""
    what = f" ({resource.description}{size})" if resource.description else (f" ({size[2:]})" if size else "")
    return f"'{resource.key}'{what}"


def _expected(resource: Resource) -> str:
    return " or ".join(resource.sha256)


def _source_text(source: Source) -> str:
    return source.url if source.member is None else f"{source.url} (archive member '{source.member}')"


def _verify_local(path: Path, resource: Resource, where: str) -> Path:
    actual = sha256_file(path)
    if actual in resource.sha256:
        return path
    size = path.stat().st_size
    expected_size = f", expected {resource.size:,} bytes" if resource.size is not None else ""
    cache_path = cache_dir() / resource.key
    if where == "cache":
        fix = (f"Delete it (rm '{path}') and load again: it is then taken from the local mirror or "
               f"re-downloaded from {resource.url}; or replace it with a good copy.")
    else:
        fix = (f"The mirror is read-only for the course: repair it (copy the file again from "
               f"{resource.url}), or put a good copy at '{cache_path}' (the cache is searched first), "
               f"or point ${MIRROR_ENV_VAR} to a good mirror.")
    raise ChecksumError(
        f"Data file {_describe(resource)} in the {where} is corrupted: '{path}' has sha256 {actual} "
        f"({size:,} bytes{expected_size}), expected sha256 {_expected(resource)}. {fix}"
    )


# ---------------------------------------------------------------------------------- writing
def _fsync_dir(folder: Path) -> None:
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextmanager
def _temp_file(folder: Path, name: str) -> Iterator[tuple[BinaryIO, Path]]:
    """A temporary file beside its final place; deleted on exit unless it was moved away."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()


def _write_verified(stream: BinaryIO, dest: Path, resource: Resource, origin: str) -> Path:
    """Copy ``stream`` into ``dest`` atomically if its sha256 is accepted; else raise ChecksumError
    and leave nothing behind."""
    with _temp_file(dest.parent, dest.name) as (f, tmp):
        digest = hashlib.sha256()
        size = 0
        while chunk := stream.read(_CHUNK):
            f.write(chunk)
            digest.update(chunk)
            size += len(chunk)
        f.flush()
        os.fsync(f.fileno())
        actual = digest.hexdigest()
        if actual not in resource.sha256:
            expected_size = f", expected {resource.size:,} bytes" if resource.size is not None else ""
            raise ChecksumError(
                f"Download of data file {_describe(resource)} from {origin} is corrupted or incomplete: "
                f"sha256 {actual} ({size:,} bytes{expected_size}), expected sha256 {_expected(resource)}. "
                f"Nothing was written to '{dest}'. Try again later, or download the file by hand, check "
                f"its sha256 and save it as '{dest}'."
            )
        f.close()
        os.replace(tmp, dest)
    _fsync_dir(dest.parent)
    sha256_file(dest)  # remember the verified file
    return dest


# -------------------------------------------------------------------------------- downloading
def _open_url(url: str):
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    return urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S)


def _siblings(source: Source) -> list[tuple[Resource, str]]:
    """Every registered file extracted from the archive at ``source.url``, with its member name."""
    found = []
    for resource in REGISTRY.values():
        for other in resource.sources:
            if other.url == source.url and other.member is not None:
                found.append((resource, other.member))
    return found


@contextmanager
def _open_member(archive: Path, member: str) -> Iterator[BinaryIO]:
    """Open ``member`` of a zip or tar archive for reading; matched by full path, else by file name."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
            name = member if member in names else _by_basename(names, member, archive)
            with zf.open(name) as handle:
                yield handle
        return
    with tarfile.open(archive, mode="r:*") as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
        name = member if member in names else _by_basename(names, member, archive)
        handle = tf.extractfile(name)
        if handle is None:
            raise DataError(f"archive '{archive.name}': member '{name}' is not a regular file")
        with handle:
            yield handle


def _by_basename(names: list[str], member: str, archive: Path) -> str:
    base = member.rsplit("/", 1)[-1]
    matches = [n for n in names if n.rsplit("/", 1)[-1] == base]
    if len(matches) != 1:
        raise DataError(f"archive '{archive.name}' has {len(matches)} members named '{base}' (wanted '{member}')")
    return matches[0]


def _download_direct(source: Source, dest: Path, resource: Resource) -> Path:
    with _open_url(source.url) as response:
        return _write_verified(response, dest, resource, source.url)


def _download_archive(source: Source, dest: Path, resource: Resource, cache: Path) -> Path:
    """Download the archive, extract the wanted member (and every other registered member that the
    cache lacks) atomically, delete the archive."""
    archive_name = source.url.rstrip("/").rsplit("/", 1)[-1] or "archive"
    with _temp_file(dest.parent, archive_name) as (f, tmp):
        with _open_url(source.url) as response:
            shutil.copyfileobj(response, f, _CHUNK)
        f.flush()
        f.close()
        origin = f"{source.url} (member '{source.member}')"
        try:
            with _open_member(tmp, source.member or "") as handle:
                _write_verified(handle, dest, resource, origin)
        except (zipfile.BadZipFile, tarfile.TarError, KeyError, EOFError, zlib.error) as exc:
            raise DataError(f"archive {source.url} is unreadable or truncated ({type(exc).__name__}: {exc})") from exc
        for other, member in _siblings(source):
            other_dest = cache / other.key
            if other.key == resource.key or other_dest.exists():
                continue
            # a sibling that fails is simply left out: it is fetched (and its error reported) when asked for
            with (suppress(DataError, OSError, KeyError, zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error),
                  _open_member(tmp, member) as handle):
                _write_verified(handle, other_dest, other, f"{source.url} (member '{member}')")
    return dest


# ---------------------------------------------------------------------------------- resolving
def resolve(key: str | Resource) -> Resource:
    """The registry entry for ``key`` (``"<dataset>/<path>"``) or the entry itself."""
    if isinstance(key, Resource):
        return key
    try:
        return REGISTRY[key]
    except KeyError:
        raise ValueError(f"unknown data file {key!r}; known files: {', '.join(sorted(REGISTRY))}") from None


def fetch(key: str | Resource, *, download: bool = True) -> Path:
    """Path of a verified local copy of a registered data file (cache → mirror → download).

    ``key``: a registry key such as ``"mnist/train-images-idx3-ubyte.gz"`` or a :class:`Resource`.
    ``download=False`` (or ``COURSE_DATA_OFFLINE=1``) forbids network access.
    Raises :class:`ChecksumError` when a local copy or a download has the wrong sha256, and
    :class:`DataNotFoundError` when the file is nowhere and cannot be downloaded.
    """
    resource = resolve(key)
    cache = cache_dir()
    mirror = mirror_dir()
    cached = cache / resource.key
    if cached.is_file():
        return _verify_local(cached, resource, "cache")
    mirrored = mirror / resource.key
    if mirrored.is_file():
        return _verify_local(mirrored, resource, "local mirror")

    failures: list[str] = []
    checksum_failures: list[str] = []
    allowed = downloads_allowed(download)
    if allowed:
        for source in resource.sources:
            try:
                if source.member is None:
                    return _download_direct(source, cached, resource)
                return _download_archive(source, cached, resource, cache)
            except ChecksumError as exc:
                checksum_failures.append(str(exc))
            except (OSError, urllib.error.URLError, http.client.HTTPException, DataError, ValueError, EOFError) as exc:
                failures.append(f"{_source_text(source)}: {type(exc).__name__}: {exc}")
        if checksum_failures:
            raise ChecksumError("\n".join(checksum_failures + failures))

    if allowed:
        tried = "Download failed:\n" + "\n".join(f"  - {line}" for line in failures)
    elif not download:
        tried = "Download: not attempted (download=False)."
    else:
        tried = f"Download: not attempted (offline mode, ${OFFLINE_ENV_VAR}={os.environ.get(OFFLINE_ENV_VAR)})."
    first = resource.sources[0]
    how = (f"download {first.url}" if first.member is None
           else f"download {first.url}, extract '{first.member}' from it,")
    raise DataNotFoundError(
        f"Data file {_describe(resource)} was not found.\n"
        f"Looked in:\n"
        f"  - cache: '{cached}' (${CACHE_ENV_VAR}, default ~/.cache/{CACHE_FOLDER_NAME})\n"
        f"  - local mirror: '{mirrored}' (${MIRROR_ENV_VAR}, default <repo>/../shared/data)\n"
        f"{tried}\n"
        f"URL: {', '.join(_source_text(s) for s in resource.sources)}\n"
        f"To fix: {how} and save it as '{cached}' (sha256 {_expected(resource)}); or set ${CACHE_ENV_VAR} "
        f"or ${MIRROR_ENV_VAR} to a folder holding '{resource.key}'; or allow downloads "
        f"(download=True and ${OFFLINE_ENV_VAR} unset)."
    )


def read_bytes(key: str | Resource, *, download: bool = True) -> bytes:
    """The verified bytes of a registered data file (see :func:`fetch`)."""
    return fetch(key, download=download).read_bytes()


__all__ = [
    "CACHE_ENV_VAR",
    "DOWNLOAD_TIMEOUT_S",
    "MIRROR_ENV_VAR",
    "OFFLINE_ENV_VAR",
    "ChecksumError",
    "DataError",
    "DataNotFoundError",
    "cache_dir",
    "clear_checksum_cache",
    "downloads_allowed",
    "fetch",
    "mirror_dir",
    "read_bytes",
    "resolve",
    "sha256_file",
]
