"""The run store: one directory per run (``runs/<key>/run.json`` + tensors) and an SQLite index.

``run.json`` is the source of truth, written atomically by the worker; the SQLite index (WAL) is
written by the driver only and can be rebuilt from the run directories (``reindex``), so a study
killed at any point loses at most the runs in flight. Several drivers on one directory coordinate
through claim files: a run claimed by a live process is not started twice.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Iterable

from . import artifacts
from .errors import StoreError
from .record import DONE_STATUSES
from .safeio import read_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    study TEXT, scale TEXT, experiment TEXT, variant TEXT, seed_index INTEGER,
    status TEXT, reason TEXT, metrics TEXT, wall_s REAL, env_fingerprint TEXT,
    finished_at TEXT, record_path TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_exp ON runs (experiment, variant, seed_index);
"""


class Store:
    """Run store rooted at ``root`` (the study's output directory)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.runs_dir = artifacts.runs_dir(self.root)
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.root / artifacts.STORE_FILE, timeout=60, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"cannot open the run store: {e}", where=str(self.root)) from e

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- records --------------------------------------------------------------------------
    def run_dir(self, key: str) -> Path:
        return self.runs_dir / key

    def put(self, record: dict[str, Any]) -> None:
        """Index a record (its run.json is already on disk)."""
        spec = record["spec"]
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (record["key"], spec.get("study"), spec.get("scale"), spec.get("experiment"),
                 json.dumps(spec.get("variant", {}), sort_keys=True), spec.get("seed_index"),
                 record["status"], record.get("reason", ""), json.dumps(record.get("metrics", {})),
                 record.get("timings", {}).get("wall_s"), record.get("env", {}).get("fingerprint"),
                 record.get("finished_at"), str(self.run_dir(record["key"]) / artifacts.RUN_FILE)))

    def statuses(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, status FROM runs").fetchall())

    def done_keys(self) -> set[str]:
        """Keys of runs that ended (finished or diverged): never redone on resume."""
        marks = ",".join("?" * len(DONE_STATUSES))
        return {k for (k,) in self.db.execute(f"SELECT key FROM runs WHERE status IN ({marks})", DONE_STATUSES)}

    def ended_on_disk(self, key: str) -> bool:
        """Whether the run's run.json exists and says it ended (finished or diverged)."""
        p = self.run_dir(key) / artifacts.RUN_FILE
        if not p.exists():
            return False
        try:
            return read_json(p).get("status") in DONE_STATUSES
        except Exception:
            return False

    def load(self, key: str) -> dict[str, Any]:
        return read_json(self.run_dir(key) / artifacts.RUN_FILE)

    def records(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Full records of ``keys`` (or all indexed runs), read from their run.json."""
        if keys is None:
            keys = [k for (k,) in self.db.execute("SELECT key FROM runs ORDER BY experiment, variant, seed_index")]
        out = []
        for k in keys:
            p = self.run_dir(k) / artifacts.RUN_FILE
            if p.exists():
                out.append(read_json(p))
        return out

    def reindex(self) -> int:
        """Index run.json files the index does not know or has stale (a driver killed between the
        worker's write and its own). Returns how many were added or updated."""
        known = self.statuses()
        n = 0
        for p in self.runs_dir.glob(f"*/{artifacts.RUN_FILE}"):
            key = p.parent.name
            try:
                rec = read_json(p)
            except Exception:
                continue  # a half-written file cannot exist (atomic writes); skip anything foreign
            if known.get(key) != rec.get("status"):
                self.put(rec)
                n += 1
        return n

    # -- claims (several drivers on one directory) ----------------------------------------
    def _claim_path(self, key: str) -> Path:
        return self.run_dir(key) / artifacts.CLAIM_FILE

    def claim(self, key: str) -> bool:
        """Take the run for this process; False if a live process holds it.

        The claim file is written whole under a temporary name and then hard-linked into place,
        which fails if the claim exists: another driver never sees a half-written claim.
        """
        path = self._claim_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        me = f"{socket.gethostname()}:{os.getpid()}"
        tmp = path.with_name(f".claim.{os.getpid()}.{uuid.uuid4().hex}")
        tmp.write_text(me)
        try:
            for _ in range(2):
                try:
                    os.link(tmp, path)
                    return True
                except FileExistsError:
                    if self._claim_alive(path):
                        return False
                    try:
                        path.unlink()  # stale: its process is gone (e.g. killed)
                    except FileNotFoundError:
                        pass
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def release(self, key: str) -> None:
        try:
            self._claim_path(key).unlink()
        except FileNotFoundError:
            pass

    def claimed_elsewhere(self, key: str) -> bool:
        path = self._claim_path(key)
        return path.exists() and self._claim_alive(path)

    @staticmethod
    def _claim_alive(path: Path) -> bool:
        try:
            host, pid = path.read_text().strip().rsplit(":", 1)
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            return True  # unreadable: never take a run away on a guess
        if host != socket.gethostname():
            return True  # cannot check another machine's process: assume it is alive
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
