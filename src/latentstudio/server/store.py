"""Persistent state of a studio: SQLite (`studio.db`) for drawings, jobs and the gallery, files for images,
latents and videos. Files are written to a temporary name and renamed into place, rows are written in
transactions after their files exist, so a crash or a restart never leaves a row pointing at half a file.

    DATA/studio.db
    DATA/drawings/<id>.png     the visitor's drawing (re-encoded PNG, never the uploaded bytes)
    DATA/latents/<id>.npz      projected ws (NVIDIA projected_w.npz layout)
    DATA/renders/<id>.mp4      rendered videos
    DATA/models/               models that `switch model` may load
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from ..errors import UserError

SCHEMA = """
CREATE TABLE IF NOT EXISTS drawings (
    id TEXT PRIMARY KEY, created REAL NOT NULL, client TEXT, width INTEGER, height INTEGER,
    status TEXT NOT NULL, job_id TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    params TEXT NOT NULL, result TEXT, error TEXT, progress REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS gallery (
    id TEXT PRIMARY KEY, added REAL NOT NULL, drawing_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""

PENDING = ("queued", "running")


class NotFoundError(UserError):
    """An id that names no drawing, job or gallery entry (HTTP 404)."""


def new_id() -> str:
    return uuid.uuid4().hex[:16]


def atomic_write_bytes(path: Path, payload: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


class Store:
    """Thread-safe (one connection, one lock): called from the event loop for quick reads/writes and from the
    job thread when jobs finish."""

    def __init__(self, data_dir: str | Path):
        self.root = Path(data_dir)
        for sub in ("drawings", "latents", "renders", "models"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.db = sqlite3.connect(self.root / "studio.db", check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._version = 0  # bumped on every gallery change; the wall rebuilds its walk when it moves

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @property
    def version(self) -> int:
        return self._version

    def bump_version(self) -> int:
        """Tell the wall that what it shows changed (the gallery, or the model its latents belong to)."""
        with self.lock:  # += from the event loop and the job thread at once would lose a bump
            self._version += 1
            return self._version

    @contextlib.contextmanager
    def _transaction(self):
        """The connection inside BEGIN IMMEDIATE ... COMMIT under the lock (ROLLBACK on any error). Callers
        bump self._version inside it so that readers never see the new rows with the old version."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _tx(self, statements: list[tuple[str, tuple]]) -> None:
        with self._transaction() as db:
            for sql, args in statements:
                db.execute(sql, args)

    def _all(self, sql: str, args: tuple = ()) -> list[dict]:
        with self.lock:
            return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def _one(self, sql: str, args: tuple = ()) -> dict | None:
        rows = self._all(sql, args)
        return rows[0] if rows else None

    # ---- paths ----------------------------------------------------------------------------------------
    def drawing_path(self, drawing_id: str) -> Path:
        return self.root / "drawings" / f"{drawing_id}.png"

    def latent_path(self, drawing_id: str) -> Path:
        return self.root / "latents" / f"{drawing_id}.npz"

    def render_path(self, job_id: str) -> Path:
        return self.root / "renders" / f"{job_id}.mp4"

    # ---- drawings ---------------------------------------------------------------------------------------
    def add_drawing(self, png: bytes, width: int, height: int, client: str, wall: bool = True) -> tuple[str, str]:
        """Store a drawing and queue its projection job in one transaction; returns (drawing_id, job_id)."""
        drawing_id, job_id, now = new_id(), new_id(), time.time()
        atomic_write_bytes(self.drawing_path(drawing_id), png)
        params = json.dumps({"drawing_id": drawing_id, "wall": bool(wall)})
        self._tx([
            ("INSERT INTO drawings (id, created, client, width, height, status, job_id) VALUES (?,?,?,?,?,?,?)",
             (drawing_id, now, client, width, height, "queued", job_id)),
            ("INSERT INTO jobs (id, kind, status, created, updated, params) VALUES (?,?,?,?,?,?)",
             (job_id, "project", "queued", now, now, params)),
        ])
        return drawing_id, job_id

    def get_drawing(self, drawing_id: str) -> dict | None:
        row = self._one("SELECT * FROM drawings WHERE id=?", (drawing_id,))
        if row is not None:
            row["on_wall"] = self._one("SELECT 1 AS x FROM gallery WHERE drawing_id=?", (drawing_id,)) is not None
        return row

    def list_drawings(self, limit: int = 100, offset: int = 0) -> list[dict]:
        return self._all("SELECT * FROM drawings ORDER BY created DESC LIMIT ? OFFSET ?", (limit, offset))

    def set_drawing_status(self, drawing_id: str, status: str, error: str | None = None) -> None:
        self._tx([("UPDATE drawings SET status=?, error=? WHERE id=?", (status, error, drawing_id))])

    def delete_drawing(self, drawing_id: str) -> bool:
        if self.get_drawing(drawing_id) is None:
            return False
        with self._transaction() as db:
            db.execute("DELETE FROM gallery WHERE drawing_id=?", (drawing_id,))
            db.execute("DELETE FROM drawings WHERE id=?", (drawing_id,))
            self._version += 1
        for path in (self.drawing_path(drawing_id), self.latent_path(drawing_id)):
            path.unlink(missing_ok=True)
        return True

    # ---- gallery ----------------------------------------------------------------------------------------
    def finish_projection(self, drawing_id: str, wall: bool) -> bool:
        """Mark a projected drawing done (and put it on the wall) in one transaction, if it still exists: an
        admin may delete it while it is projected. False (and its latent file removed) when it is gone."""
        with self._transaction() as db:
            done = db.execute("UPDATE drawings SET status='done', error=NULL WHERE id=?", (drawing_id,)).rowcount
            if done and wall:
                db.execute("INSERT INTO gallery (id, added, drawing_id) VALUES (?,?,?)",
                           (new_id(), time.time(), drawing_id))
                self._version += 1
        if not done:
            self.latent_path(drawing_id).unlink(missing_ok=True)
        return bool(done)

    def gallery(self) -> list[dict]:
        return self._all("SELECT g.id, g.added, g.drawing_id FROM gallery g JOIN drawings d ON d.id = g.drawing_id "
                         "ORDER BY g.added")

    def clear_gallery(self) -> int:
        with self._transaction() as db:
            n = db.execute("DELETE FROM gallery").rowcount
            self._version += 1
        return n

    # ---- settings (what admins changed at run time, kept across restarts) -------------------------------------
    def get_setting(self, key: str) -> str | None:
        row = self._one("SELECT value FROM settings WHERE key=?", (key,))
        return row["value"] if row else None

    def set_setting(self, key: str, value: str) -> None:
        self._tx([("INSERT INTO settings (key, value) VALUES (?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value))])

    # ---- jobs -------------------------------------------------------------------------------------------
    def add_job(self, kind: str, params: dict) -> str:
        job_id, now = new_id(), time.time()
        self._tx([("INSERT INTO jobs (id, kind, status, created, updated, params) VALUES (?,?,?,?,?,?)",
                   (job_id, kind, "queued", now, now, json.dumps(params)))])
        return job_id

    def get_job(self, job_id: str) -> dict | None:
        row = self._one("SELECT * FROM jobs WHERE id=?", (job_id,))
        if row is not None:
            row["params"] = json.loads(row["params"])
            row["result"] = json.loads(row["result"]) if row["result"] else None
        return row

    def pending_jobs(self) -> list[dict]:
        rows = self._all("SELECT id FROM jobs WHERE status IN (?, ?) ORDER BY created", PENDING)
        return [self.get_job(r["id"]) for r in rows]

    def update_job(self, job_id: str, status: str | None = None, progress: float | None = None,
                   result: dict | None = None, error: str | None = None) -> None:
        sets, args = ["updated=?"], [time.time()]
        for col, val in (("status", status), ("progress", progress), ("error", error)):
            if val is not None:
                sets.append(f"{col}=?")
                args.append(val)
        if result is not None:
            sets.append("result=?")
            args.append(json.dumps(result))
        self._tx([(f"UPDATE jobs SET {', '.join(sets)} WHERE id=?", (*args, job_id))])

    def counts(self) -> dict:
        return {t: self._one(f"SELECT COUNT(*) AS n FROM {t}")["n"] for t in ("drawings", "jobs", "gallery")}
