"""The Mesos fetcher: CommandInfo.uris into the sandbox, with extraction and a per-user cache."""

from __future__ import annotations

import asyncio
import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .wire import JsonDict

_ARCHIVES = (".tar", ".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz2", ".txz", ".zip", ".gz")


class FetchError(RuntimeError):
    """A URI could not be fetched; the container launch fails."""


@dataclass
class FetchStats:
    """Per URI: downloads (not cache hits), bytes downloaded, cache hits."""

    fetches: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    cache_hits: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> JsonDict:
        return {
            "fetches": dict(self.fetches),
            "bytes": dict(self.bytes),
            "cache_hits": dict(self.cache_hits),
        }


class Fetcher:
    def __init__(self, cache_dir: Path, stats: FetchStats) -> None:
        self.cache_dir = cache_dir
        self.stats = stats
        self._cache: dict[tuple[str, str], Path] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def fetch_all(self, uris: list[JsonDict], sandbox: Path, user: str) -> None:
        """Fetch sequentially, as Mesos does; raise FetchError on the first failure."""
        for uri in uris:
            await self.fetch(uri, sandbox, user)

    async def fetch(self, uri: JsonDict, sandbox: Path, user: str) -> None:
        value = uri["value"]
        name = uri.get("output_file") or _basename(value)
        target = sandbox / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if uri.get("cache"):
            key = (user, value)
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                cached = self._cache.get(key)
                if cached is None or not cached.exists():
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    cached = self.cache_dir / f"c{len(self._cache)}_{_basename(value)}"
                    await self._download(value, cached)
                    self._cache[key] = cached
                else:
                    self.stats.cache_hits[value] = self.stats.cache_hits.get(value, 0) + 1
            await asyncio.to_thread(shutil.copyfile, cached, target)
        else:
            await self._download(value, target)
        if uri.get("executable"):
            os.chmod(target, 0o755)
        elif uri.get("extract", True) and name.endswith(_ARCHIVES):
            await asyncio.to_thread(_extract, target, sandbox)

    async def _download(self, value: str, target: Path) -> None:
        parsed = urllib.parse.urlparse(value)
        try:
            if parsed.scheme in ("http", "https"):
                size = await asyncio.to_thread(_http_get, value, target)
            elif parsed.scheme in ("", "file"):
                path = parsed.path if parsed.scheme == "file" else value
                if not os.path.isabs(path):
                    raise FetchError(f"Relative path '{value}' needs --frameworks_home")
                size = await asyncio.to_thread(_copy, Path(path), target)
            else:
                raise FetchError(f"Unsupported URI scheme in '{value}'")
        except FetchError:
            raise
        except (OSError, urllib.error.URLError, ValueError) as exc:
            raise FetchError(f"Failed to fetch '{value}': {exc}") from exc
        self.stats.fetches[value] = self.stats.fetches.get(value, 0) + 1
        self.stats.bytes[value] = self.stats.bytes.get(value, 0) + size


def _basename(value: str) -> str:
    path = urllib.parse.urlparse(value).path or value
    return os.path.basename(path.rstrip("/")) or "index.html"


def _copy(source: Path, target: Path) -> int:
    shutil.copyfile(source, target)
    return target.stat().st_size


def _http_get(url: str, target: Path) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 16)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"Failed to fetch '{url}': HTTP {exc.code}") from exc
    return target.stat().st_size


def _extract(archive: Path, sandbox: Path) -> None:
    name = archive.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(sandbox)
        elif (
            name.endswith(".gz")
            and not name.endswith((".tar.gz",))
            and not tarfile.is_tarfile(archive)
        ):
            import gzip

            with gzip.open(archive, "rb") as src, open(sandbox / name[:-3], "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            with tarfile.open(archive) as tar:
                try:
                    tar.extractall(sandbox, filter="data")
                except TypeError:  # Python without extraction filters
                    tar.extractall(sandbox)
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise FetchError(f"Failed to extract '{archive}': {exc}") from exc
