"""Who owns an output directory: ``<out>/_CLAIM.json``, created atomically by one run and
removed by it at the end, so that a second run into the same directory stops before it does
any work (docs/reliability.md, "Concurrent runs").

- local directories: the claim is written to a file of its own and hard-linked into place,
  which fails if a claim is there (``O_EXCL`` where links are not supported);
- gs://: the object is created with ``ifGenerationMatch=0``, which fails if it exists, and
  replaced or removed only at the generation read;
- other schemes Beam knows: created if absent and read back, which narrows a race but cannot
  close it.

A claim whose run died stays until a run takes it over by naming that run
(``--take_over RUN_ID``): never silently.
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import json
import os
import socket

from apache_beam.io.filesystems import FileSystems

from variant_etl.core.errors import OutputError
from variant_etl.core.layout import CLAIM, MANIFEST, TEMPORARY


class ClaimedError(OutputError):
    """The output directory belongs to another run."""


@dataclasses.dataclass(frozen=True)
class Claim:
    run_id: str
    started_at: str  # UTC, to the second
    host: str
    pid: int

    @classmethod
    def new(cls, run_id: str) -> Claim:
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(run_id=run_id, started_at=now, host=socket.gethostname(), pid=os.getpid())

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, path: str) -> Claim:
        try:
            fields = json.loads(data.decode("utf-8"))
            run_id, started_at, host = (str(fields[name]) for name in ("run_id", "started_at", "host"))
            return cls(run_id, started_at, host, int(fields["pid"]))
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise OutputError(
                f"{path} is not a claim this package wrote. Hint: if no run is writing into this "
                "directory, delete the file."
            ) from None

    def describe(self) -> str:
        state = ""
        if self.host == socket.gethostname():
            state = ", still running" if _alive(self.pid) else ", no longer running"
        return f"run {self.run_id} (started {self.started_at} on {self.host}, pid {self.pid}{state})"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_path(out: str) -> str:
    return FileSystems.join(out, CLAIM)


def claimed_error(out: str, holder: Claim, flag: str) -> ClaimedError:
    return ClaimedError(
        f"{flag} {out} is claimed by {holder.describe()}: two runs must not write one output. "
        f"Hint: wait for that run to end, or choose another {flag}; if it is no longer running, "
        f"rerun with --take_over {holder.run_id} (its temporary files and any partial commit go)."
    )


def read_claim(out: str) -> Claim | None:
    path = claim_path(out)
    if _is_gcs(path):
        data, _ = _gcs_read(_gcs_blob(path))
        return None if data is None else Claim.from_json(data, path)
    if "://" not in path:
        try:
            with open(path, "rb") as f:
                return Claim.from_json(f.read(), path)
        except FileNotFoundError:
            return None
    if not FileSystems.exists(path):
        return None
    with FileSystems.open(path) as f:
        return Claim.from_json(f.read(), path)


def acquire(out: str, claim: Claim, flag: str = "--output_parquet_dir") -> list[str]:
    """Claims ``out`` for ``claim.run_id``, or raises ClaimedError naming the holder.
    Returns the local directories it had to create (a failed run removes them if empty)."""
    path = claim_path(out)
    created: list[str] = []
    if _is_gcs(path):
        _gcs_acquire(path, claim, out, flag)
    elif "://" not in path:
        created = _makedirs(out)
        _local_acquire(path, claim, out, flag)
    else:
        holder = read_claim(out)
        if holder is None:
            if not FileSystems.exists(out):
                FileSystems.mkdirs(out)
            with FileSystems.create(path) as sink:
                sink.write(claim.to_json())
    holder = read_claim(out)  # read back: a store without preconditions may have let two in
    if holder != claim:
        raise claimed_error(out, holder, flag) if holder else OutputError(f"{path}: the claim vanished")
    return created


def release(out: str, run_id: str) -> None:
    """Gives ``out`` up, if ``run_id`` still holds it."""
    path = claim_path(out)
    if _is_gcs(path):
        blob = _gcs_blob(path)
        data, generation = _gcs_read(blob)
        if data is not None and Claim.from_json(data, path).run_id == run_id:
            _gcs_call(lambda: blob.delete(if_generation_match=generation), path)
        return
    holder = read_claim(out)
    if holder is not None and holder.run_id == run_id:
        _remove(path)


def take_over(out: str, stale_run_id: str, claim: Claim, flag: str = "--output_parquet_dir") -> Claim | None:
    """Replaces the claim of ``stale_run_id`` (a run that died) by ``claim``; returns the
    replaced claim, or None if ``out`` was not claimed (then it is simply claimed)."""
    path = claim_path(out)
    holder = read_claim(out)
    if holder is not None and holder.run_id != stale_run_id:
        raise claimed_error(out, holder, flag)
    if holder is None:
        acquire(out, claim, flag)
        return None
    if not _is_gcs(path):
        _remove(path)
        acquire(out, claim, flag)  # exclusive, and read back
        return holder
    blob = _gcs_blob(path)
    data, generation = _gcs_read(blob)
    if data is None or Claim.from_json(data, path).run_id != stale_run_id:
        raise claimed_error(out, read_claim(out), flag)
    _gcs_call(
        lambda: blob.upload_from_string(
            claim.to_json(), content_type="application/json", if_generation_match=generation
        ),
        path,
    )
    if read_claim(out) != claim:
        raise claimed_error(out, read_claim(out), flag)
    return holder


def _remove(path: str) -> None:
    if "://" in path:
        FileSystems.delete([path])
    else:
        os.remove(path)


def _makedirs(out: str) -> list[str]:
    """Creates ``out`` and missing parents; returns those it created, deepest first."""
    missing = []
    path = os.path.abspath(out)
    while not os.path.exists(path):
        missing.append(path)
        path = os.path.dirname(path)
    for path in reversed(missing):
        try:
            os.mkdir(path)
        except FileExistsError:  # another run made it meanwhile: not ours to remove
            missing.remove(path)
    return missing


def _local_acquire(path: str, claim: Claim, out: str, flag: str) -> None:
    staged = f"{path}.{claim.run_id}"
    with open(staged, "wb") as f:
        f.write(claim.to_json())
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(staged, path)  # atomic, and fails if a claim is there
    except FileExistsError:
        holder = read_claim(out)
        if holder is not None:
            raise claimed_error(out, holder, flag) from None
        raise OutputError(f"{path}: another run claimed and released it meanwhile; run again") from None
    except OSError as err:  # no hard links here (some network file systems): O_EXCL
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = read_claim(out)
            raise claimed_error(out, holder, flag) from None
        with os.fdopen(fd, "wb") as f:
            f.write(claim.to_json())
    finally:
        os.remove(staged)


def _is_gcs(path: str) -> bool:
    return path.startswith("gs://")


def _gcs_client():
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project="variant-etl", credentials=AnonymousCredentials())
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return storage.Client()
    except DefaultCredentialsError:  # as Beam's gs:// file system: public buckets only
        return storage.Client.create_anonymous_client()


def _gcs_blob(path: str):
    bucket, _, name = path[len("gs://") :].partition("/")
    return _gcs_client().bucket(bucket).blob(name)


def _gcs_read(blob) -> tuple[bytes | None, int | None]:
    """The object's bytes and the generation they are of (None, None: no object)."""
    from google.api_core import exceptions

    try:
        blob.reload()
        generation = blob.generation  # before the download, which may reset it
        return blob.download_as_bytes(if_generation_match=generation), generation
    except exceptions.NotFound:
        return None, None


def _gcs_call(call, path: str):
    from google.api_core import exceptions

    try:
        return call()
    except (exceptions.PreconditionFailed, exceptions.NotFound):
        raise OutputError(f"{path} changed while this run read it: another run claimed it") from None


def _gcs_acquire(path: str, claim: Claim, out: str, flag: str) -> None:
    from google.api_core import exceptions

    holder = read_claim(out)
    if holder is not None:
        raise claimed_error(out, holder, flag)
    blob = _gcs_blob(path)
    try:
        blob.upload_from_string(claim.to_json(), content_type="application/json", if_generation_match=0)
    except exceptions.PreconditionFailed:
        holder = read_claim(out)
        if holder is None:
            raise OutputError(f"{path}: another run claimed and released it meanwhile; run again") from None
        raise claimed_error(out, holder, flag) from None


def read_manifest(out: str) -> dict | None:
    """The ``_manifest.json`` of the completed run in ``out``, or None."""
    path = FileSystems.join(out, MANIFEST)
    if "://" not in path:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
    elif FileSystems.exists(path):
        with FileSystems.open(path) as f:
            data = f.read()
    else:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise OutputError(f"{path} is not a manifest this package wrote (not JSON)") from None


def listed_files(out: str) -> list[str]:
    """Every file under ``out``, relative to it, but runs' temporary files and the claim."""
    if "://" not in out:
        names = []
        for root, _, files in os.walk(out):
            for name in files:
                names.append(os.path.relpath(os.path.join(root, name), out).replace(os.sep, "/"))
    else:
        base = out.rstrip("/") + "/"
        matched = FileSystems.match([base + "**"])[0].metadata_list
        names = [m.path[len(base) :] for m in matched if m.path.startswith(base)]
    return sorted(n for n in names if not n.startswith(TEMPORARY + "/") and not n.startswith(CLAIM))


def remove_empty_dirs(paths: list[str]) -> None:
    """Removes each local directory of ``paths`` (in order) if it is empty; never one that holds
    anything (``os.rmdir`` refuses), never a remote one (gs:// has no directories)."""
    for path in paths:
        if "://" in path:
            continue
        try:
            os.rmdir(path)
        except OSError:
            pass


def delete_tree(path: str) -> None:
    """Deletes a directory this run owns and all in it. On gs:// a directory is a name prefix
    (``FileSystems.exists`` of it is False): its objects are listed and deleted."""
    if "://" not in path:
        if os.path.lexists(path):
            FileSystems.delete([path])
        return
    matched = FileSystems.match([path.rstrip("/") + "/**"])[0].metadata_list
    if matched:
        FileSystems.delete([m.path for m in matched])
