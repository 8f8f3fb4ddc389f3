"""Files through Beam's FileSystems: local paths, gs:// and every other scheme Beam knows, the
same on the driver and on workers. The core takes ``open_binary`` as an argument and never
imports Beam."""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems


def anonymous_gcs_for_an_emulator() -> None:
    """With STORAGE_EMULATOR_HOST set (gcp-storage-emulator, tests), Beam's gs:// file system
    connects anonymously at once. Otherwise Beam first looks up Google credentials, retrying four
    times with backoff (about 30 s per process where there are none) and asking the metadata
    server at 169.254.169.254. Beam has no option for it: its credential cache (Beam 2.77) is
    marked as looked up, with no credentials, which is what it does itself when none are found."""
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    try:
        from apache_beam.internal.gcp import auth
    except ImportError:  # Beam without its gcp extra: no gs:// at all
        return
    credentials = getattr(auth, "_Credentials", None)
    if credentials is not None and hasattr(credentials, "_credentials_init"):
        with credentials._credentials_lock:
            credentials._credentials, credentials._credentials_init = None, True


anonymous_gcs_for_an_emulator()  # workers: at import; the CLI again when it starts


def open_binary(path: str):
    """Opens any path Beam knows (local, gs://, ...) without decompressing it."""
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


class Prefetch:
    """The planner reads the start of every input several times (its format, its header, an
    estimate of its records) and looks for its index. Over the network, one round trip after
    another per file would dominate the plan of many inputs; this reads the first
    ``head_bytes`` of the remote ``paths`` on threads, a window of files ahead of the one in
    use, and lists each of their directories once. ``open`` serves a file from its head, then
    from the file system; ``exists`` answers from the listing. Local paths go straight to the
    file system. Use it as a context manager, and open the paths in about the given order."""

    AHEAD = 32

    def __init__(self, paths, head_bytes: int = 2**20):
        self._remote = [p for p in dict.fromkeys(paths) if "://" in p]
        self._order = {path: i for i, path in enumerate(self._remote)}
        self._head_bytes = head_bytes
        self._heads: dict = {}  # path -> future of its head
        self._listed: dict = {}  # directory -> future of the set of its files
        self._pool = ThreadPoolExecutor(16) if self._remote else None

    def __enter__(self):
        if self._remote:
            for directory in dict.fromkeys(p.rsplit("/", 1)[0] for p in self._remote):
                self._listed[directory] = self._pool.submit(self._list, directory)
            self._ahead(0)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _head(self, path: str) -> bytes:
        with open_binary(path) as f:
            return f.read(self._head_bytes)

    def _list(self, directory: str) -> frozenset:
        found = FileSystems.match([directory + "/*"])[0].metadata_list
        return frozenset(m.path for m in found)

    def _ahead(self, index: int) -> None:
        for path in self._remote[index : index + self.AHEAD]:
            if path not in self._heads:
                self._heads[path] = self._pool.submit(self._head, path)
        for path in [p for p in self._heads if self._order[p] < index]:
            del self._heads[path]  # done with: bounded memory

    def open(self, path: str):
        index = self._order.get(path)
        if index is None:
            return open_binary(path)
        self._ahead(index)
        head = self._heads[path].result()
        return io.BufferedReader(_HeadFirst(path, head, complete=len(head) < self._head_bytes))

    def exists(self, path: str) -> bool:
        listed = self._listed.get(path.rsplit("/", 1)[0])  # only remote directories are listed
        return FileSystems.exists(path) if listed is None else path in listed.result()


class _HeadFirst(io.RawIOBase):
    """A file whose first bytes are in memory: the rest is read from the file system, if asked."""

    def __init__(self, path: str, head: bytes, *, complete: bool):
        self._path, self._head, self._complete = path, head, complete
        self._position, self._rest = 0, None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            if not self._complete:
                self._file().seek(0, io.SEEK_END)
                offset += self._rest.tell()
            else:
                offset += len(self._head)
        elif whence == io.SEEK_CUR:
            offset += self._position
        self._position = max(0, offset)
        return self._position

    def readinto(self, buffer) -> int:
        if self._position < len(self._head):
            chunk = self._head[self._position : self._position + len(buffer)]
        elif self._complete:
            return 0
        else:
            rest = self._file()
            rest.seek(self._position)
            chunk = rest.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)

    def _file(self):
        if self._rest is None:
            self._rest = open_binary(self._path)
        return self._rest

    def close(self) -> None:
        if self._rest is not None:
            self._rest.close()
        super().close()
