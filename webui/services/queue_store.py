"""The durable queue's SQLite file (`<data dir>/queue.sqlite3`): the one place that knows its schema.

A job row holds its owner, kind, parameters (services/job_codec.py), status, progress, timestamps and
error; `job_files` holds each saved image with its infotext. The file carries a schema version; older
versions are migrated in order, and a newer or unreadable file is refused (never emptied)."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from webui.services import job_codec
from webui.services.job import Job, JobStatus

log = logging.getLogger(__name__)

FILE_NAME = "queue.sqlite3"

# Migration n takes the file from version n - 1 to version n; append, never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        position INTEGER NOT NULL,
        owner TEXT,
        kind TEXT NOT NULL,
        params TEXT NOT NULL,
        status TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        error TEXT
    );
    CREATE INDEX jobs_status ON jobs (status, position);
    CREATE TABLE job_files (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        image_index INTEGER NOT NULL,
        path TEXT NOT NULL,
        infotext TEXT NOT NULL,
        PRIMARY KEY (job_id, image_index)
    );
    """,
)
VERSION = len(MIGRATIONS)
UNFINISHED = ("queued", "running")


class QueueStoreRefused(RuntimeError):
    """The queue file cannot be used as it is; the message names the file and what to do."""


@dataclass(frozen=True)
class StoredJob:
    id: str
    owner: str | None
    kind: str
    params: str  # job_codec's JSON text
    status: str
    progress: float
    created: float
    started: float | None
    finished: float | None
    error: str | None
    files: tuple[tuple[str, str], ...] = ()  # saved images in order: (path, infotext)


class QueueStore:
    """One SQLite file in WAL mode, shared by the worker and request threads (one connection, locked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise QueueStoreRefused(
                f"The job queue file {path} is not a readable queue database ({error}); move it away "
                "to start with an empty queue, or restore it from a backup"
            ) from error

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        db = self._db
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise QueueStoreRefused(
                    f"The job queue file {self.path} holds other tables ({', '.join(sorted(tables))}) and "
                    "no schema_version: it is not this program's queue; move it away"
                )
            db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            db.execute("INSERT INTO schema_version VALUES (0)")
        (version,) = db.execute("SELECT version FROM schema_version").fetchone()
        if version > VERSION:
            raise QueueStoreRefused(
                f"The job queue file {self.path} has schema version {version}, newer than this program's "
                f"{VERSION}: it was written by a newer release; run that release, or move the file away"
            )
        for number in range(version + 1, VERSION + 1):
            db.execute("BEGIN")
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("UPDATE schema_version SET version = ?", (number,))
            db.execute("COMMIT")

    # Writes.

    def add(self, job_id: str, owner: str | None, kind: str, params: str, created: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, position, owner, kind, params, status, created) VALUES "
                "(?, (SELECT COALESCE(MAX(position), 0) + 1 FROM jobs), ?, ?, ?, 'queued', ?)",
                (job_id, owner, kind, params, created),
            )

    def started(self, job_id: str, when: float) -> None:
        self._update(job_id, status="running", started=when)

    def finished(
        self, job_id: str, status: str, when: float, progress: float, error: str | None = None
    ) -> None:
        self._update(job_id, status=status, finished=when, progress=progress, error=error)

    def requeue(self, job_id: str) -> None:
        """A job cut short by a stop or crash waits again (its saved images stay recorded)."""
        self._update(job_id, status="queued", started=None)

    def add_file(self, job_id: str, index: int, path: str, infotext: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO job_files VALUES (?, ?, ?, ?)", (job_id, index, path, infotext)
            )

    def reorder(self, job_ids: Sequence[str]) -> None:
        """Give the listed jobs the positions they already hold among themselves, in the listed order."""
        with self._lock:
            marks = ",".join("?" * len(job_ids))
            rows = self._db.execute(f"SELECT position FROM jobs WHERE id IN ({marks})", tuple(job_ids))
            positions = sorted(row[0] for row in rows)
            self._db.execute("BEGIN")
            for job_id, position in zip(job_ids, positions):
                self._db.execute("UPDATE jobs SET position = ? WHERE id = ?", (position, job_id))
            self._db.execute("COMMIT")

    def _update(self, job_id: str, **values: object) -> None:
        columns = ", ".join(f"{name} = ?" for name in values)  # names come from this module only
        with self._lock:
            self._db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", (*values.values(), job_id))

    # Reads.

    def unfinished(self) -> list[StoredJob]:
        """Queued and running jobs, in queue order (what a restart runs again)."""
        return self._select("WHERE status IN ('queued', 'running') ORDER BY position")

    def get(self, job_id: str) -> StoredJob | None:
        """The job with its saved files."""
        found = self._select("WHERE id = ?", (job_id,))
        if not found:
            return None
        saved = self.files(job_id)
        files = tuple(saved[index] for index in sorted(saved))
        return dataclasses.replace(found[0], files=files)

    def finished_jobs(self, owner: str | None, limit: int) -> list[StoredJob]:
        """The newest finished jobs with their files, newest first: `owner`'s, or everybody's for None."""
        mine = "" if owner is None else "AND owner = ? "
        rows = self._select(
            f"WHERE status NOT IN ('queued', 'running') {mine}ORDER BY finished DESC LIMIT ?",
            (limit,) if owner is None else (owner, limit),
        )
        return [dataclasses.replace(row, files=self._ordered_files(row.id)) for row in rows]

    def _ordered_files(self, job_id: str) -> tuple[tuple[str, str], ...]:
        saved = self.files(job_id)
        return tuple(saved[index] for index in sorted(saved))

    def files(self, job_id: str) -> dict[int, tuple[str, str]]:
        """The job's saved images so far: index → (path, infotext)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT image_index, path, infotext FROM job_files WHERE job_id = ? ORDER BY image_index",
                (job_id,),
            ).fetchall()
        return {index: (path, infotext) for index, path, infotext in rows}

    def _select(self, where: str, args: tuple[object, ...] = ()) -> list[StoredJob]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, owner, kind, params, status, progress, created, started, finished, error "
                f"FROM jobs {where}",
                args,
            ).fetchall()
        return [StoredJob(*row) for row in rows]


class StoreJournal:
    """The JobQueue's journal on a QueueStore: generation jobs are written, everything else stays in
    memory (checkpoint/VAE switches, previews, extras: quick, and meaningless after a restart)."""

    def __init__(self, store: QueueStore) -> None:
        self.store = store

    def keeps(self, job: Job) -> bool:
        return job_codec.persistable(job.params)

    def added(self, job: Job) -> None:
        self.store.add(job.id, job.owner, job.kind, job_codec.dumps(job.params), job.created)

    def started(self, job: Job) -> None:
        self.store.started(job.id, job.started or job.created)

    def finished(self, job: Job, status: JobStatus, error: BaseException | None, requeue: bool) -> None:
        if requeue:
            self.store.requeue(job.id)
            return
        message = str(error) if error is not None and status is not JobStatus.DONE else None
        progress = 1.0 if status is JobStatus.DONE else job.progress().progress
        self.store.finished(job.id, status.value, time.time(), progress, message)

    def file(self, job: Job, index: int, path: str, infotext: str) -> None:
        self.store.add_file(job.id, index, path, infotext)

    def reordered(self, jobs: Sequence[Job]) -> None:
        self.store.reorder([job.id for job in jobs])

    def history(self, job_id: str) -> StoredJob | None:
        return self.store.get(job_id)

    def finished_jobs(self, owner: str | None, limit: int) -> list[StoredJob]:
        return self.store.finished_jobs(owner, limit)

    def restore(self, clock: Callable[[], float]) -> list[Job]:
        """The jobs the last run left queued or running, queued again in their order. A row whose
        parameters cannot be read is marked failed with the reason (the others still run)."""
        jobs = []
        for row in self.store.unfinished():
            try:
                params = job_codec.loads(row.params)
            except job_codec.CodecError as error:
                log.error("Queue: job %s cannot run again: %s", row.id, error)
                self.store.finished(row.id, JobStatus.FAILED.value, clock(), row.progress, str(error))
                continue
            job = Job(params, row.kind, clock, row.owner, job_id=row.id)
            job.created = row.created
            if row.status == "running":  # it runs again after the images it saved (services.resume)
                saved = self.store.files(row.id)
                job.saved_before_restart = tuple(saved[index] for index in sorted(saved))
                self.store.requeue(row.id)
            jobs.append(job)
        return jobs
