"""The run store: one directory per run (``runs/<key>/run.json`` + tensors) and an SQLite index.

``run.json`` is the source of truth, written atomically by the worker; the SQLite index (WAL) is
written by the driver only and can be rebuilt from the run directories (``reindex``), so a study
killed at any point loses at most the runs in flight. The index and the folders agree: a run counts
as done only while its run.json is on disk, passes the record schema (``record.validate``), sits in
its own folder and every artifact it lists matches its recorded sha256; a run that fails any of
these is dropped from the index (so it is redone) and reported by ``invalid()``.

Several drivers on one directory coordinate through claim files with leases (see ``claim``).
Every SQLite or file-system failure is a ``StoreError`` naming the path.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import RestudyError, StoreError
from . import artifacts
from .record import DONE_STATUSES, validate
from .safeio import read_json, verify_file

LEASE_S = 60.0  # a claim not refreshed for this long is expired: another driver may take the run

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    study TEXT, scale TEXT, experiment TEXT, variant TEXT, seed_index INTEGER,
    status TEXT, reason TEXT, metrics TEXT, wall_s REAL, env_fingerprint TEXT,
    finished_at TEXT, record_path TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_exp ON runs (experiment, variant, seed_index);
"""

_HINTS = {
    "disk is full": "free some disk space and run again",
    "readonly": "the folder or its store.db is read-only; use a writable --out",
    "unable to open": "the folder cannot hold the index (missing, not a folder, or not writable)",
    "disk i/o error": "the disk failed to read or write the index",
    "malformed": "the index is damaged: delete store.db, it is rebuilt from the run folders",
    "not a database": "store.db is not an SQLite file: delete store.db, it is rebuilt from the run folders",
}


class Store:
    """Run store rooted at ``root`` (the study's output directory).

    Args:
        root: the study's output directory.
        lease_s: how long a claim stays valid without being refreshed.
        heartbeat_s: how often a background thread refreshes this driver's claims (default a
            quarter of the lease; 0 turns it off, then call :meth:`heartbeat` yourself).
    """

    def __init__(
        self, root: str | os.PathLike[str], *, lease_s: float = LEASE_S, heartbeat_s: float | None = None
    ) -> None:
        self.root = Path(root)
        self.runs_dir = artifacts.runs_dir(self.root)
        self.db_path = self.root / artifacts.STORE_FILE
        self.lease_s = float(lease_s)
        self.heartbeat_s = self.lease_s / 4 if heartbeat_s is None else float(heartbeat_s)
        self.driver = uuid.uuid4().hex  # this driver, unique even for two stores in one process
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()
        self._checked: dict[str, tuple[Any, dict[str, Any] | None, str | None]] = {}
        self._invalid: dict[str, str] = {}
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the run folder: {e.strerror or e}", where=str(self.runs_dir)) from e
        self.db: Any = None
        with self._sql("open"):
            self.db = _open_index(self.db_path)

    def close(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sql(self, doing: str) -> _SqlErrors:
        return _SqlErrors(self.db_path, doing)

    # -- records --------------------------------------------------------------------------
    def run_dir(self, key: str) -> Path:
        return self.runs_dir / key

    def put(self, record: dict[str, Any]) -> None:
        """Index a record (its run.json is already on disk)."""
        spec = record["spec"]
        with self._sql("write"):
            self.db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record["key"],
                    spec.get("study"),
                    spec.get("scale"),
                    spec.get("experiment"),
                    json.dumps(spec.get("variant", {}), sort_keys=True),
                    spec.get("seed_index"),
                    record["status"],
                    record.get("reason", ""),
                    json.dumps(record.get("metrics", {})),
                    record.get("timings", {}).get("wall_s"),
                    record.get("env", {}).get("fingerprint"),
                    record.get("finished_at"),
                    str(self.run_dir(record["key"]) / artifacts.RUN_FILE),
                ),
            )

    def statuses(self) -> dict[str, str]:
        """Status of every indexed run, as the index says (not checked against the folders)."""
        with self._sql("read"):
            return dict(self.db.execute("SELECT key, status FROM runs").fetchall())

    def done_keys(self) -> set[str]:
        """Keys of runs that ended (finished or diverged) and are valid on disk: never redone."""
        marks = ",".join("?" * len(DONE_STATUSES))
        with self._sql("read"):
            keys = [k for (k,) in self.db.execute(f"SELECT key FROM runs WHERE status IN ({marks})", DONE_STATUSES)]
        done = set()
        for key in keys:
            rec = self._valid_or_drop(key, indexed_done=True)
            if rec is not None and rec["status"] in DONE_STATUSES:
                done.add(key)
        return done

    def ended_on_disk(self, key: str) -> bool:
        """Whether the run's run.json is valid and says it ended (finished or diverged)."""
        rec, _ = self.check(key)
        return rec is not None and rec["status"] in DONE_STATUSES

    def load(self, key: str) -> dict[str, Any]:
        """The run's record, checked (schema, folder, artifact hashes).

        Raises:
            StoreError: the run is missing or invalid (the message says why).
        """
        rec, reason = self.check(key)
        if rec is None:
            raise StoreError(reason or "no such run (no run.json)", where=str(self.run_dir(key)))
        return rec

    def records(self, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Full records of ``keys`` (or all indexed runs) that are valid on disk.

        An invalid run is left out, dropped from the index and reported by :meth:`invalid`.
        """
        if keys is None:
            with self._sql("read"):
                keys = [k for (k,) in self.db.execute("SELECT key FROM runs ORDER BY experiment, variant, seed_index")]
        indexed = self.statuses()
        out = []
        for k in keys:
            rec = self._valid_or_drop(k, indexed_done=indexed.get(k) in DONE_STATUSES)
            if rec is not None:
                out.append(rec)
        return out

    def invalid(self) -> dict[str, str]:
        """Runs found invalid (and so not done) since this store was opened: {key: why}.

        Filled by :meth:`reindex`, :meth:`done_keys`, :meth:`records`; a run redone validly leaves it.
        """
        return dict(self._invalid)

    def reindex(self) -> int:
        """Make the index agree with the run folders.

        Indexes valid run.json files the index does not know or has stale (a driver killed between
        the worker's write and its own); drops ended runs whose folder or run.json is missing or
        invalid (reported by :meth:`invalid`). Returns how many runs were added or updated.
        """
        known = self.statuses()
        on_disk = {p.parent.name for p in self.runs_dir.glob(f"*/{artifacts.RUN_FILE}")}
        for key, status in known.items():
            if key not in on_disk:
                self._valid_or_drop(key, indexed_done=status in DONE_STATUSES)
        n = 0
        for key in sorted(on_disk):
            rec = self._valid_or_drop(key, indexed_done=known.get(key) in DONE_STATUSES)
            if rec is not None and known.get(key) != rec["status"]:
                self.put(rec)
                n += 1
        return n

    def verify(self, key: str) -> None:
        """Check every artifact the run records against its sha256.

        Raises:
            StoreError: a file is missing, unreadable or differs (names the file and both hashes).
        """
        self.load(key)

    def check(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        """``(record, None)`` for a valid run, ``(None, why)`` for an invalid one, ``(None, None)``
        when the run has no run.json (never ran, or in flight).

        The record schema is checked once per version of run.json, each artifact's sha256 once per
        version of the file (both cached by size, inode and times), so repeated checks are cheap.
        """
        folder = self.run_dir(key)
        path = folder / artifacts.RUN_FILE
        try:
            st = path.stat()
        except FileNotFoundError:
            return None, None
        except OSError as e:
            return None, f"{path}: cannot read run.json: {e.strerror or e}"
        sig = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = self._checked.get(key)
        if cached is None or cached[0] != sig:
            try:
                rec, reason = read_json(path), None  # as written (fields of newer versions too)
                validate(rec, key, where=str(path))
            except RestudyError as e:
                rec, reason = None, str(e)
            except (OSError, ValueError, RecursionError) as e:
                rec, reason = None, f"{path}: cannot read run.json: {e}"
            cached = self._checked[key] = (sig, rec, reason)
        rec, reason = cached[1], cached[2]
        if rec is not None:
            try:
                for name, info in rec.get("artifacts", {}).items():
                    verify_file(folder / name, info["sha256"])
            except StoreError as e:
                return None, str(e)
        return rec, reason

    def _valid_or_drop(self, key: str, *, indexed_done: bool) -> dict[str, Any] | None:
        """The valid record of ``key``, or None; an invalid run (or an ended one whose run.json is
        gone) is dropped from the index and reported."""
        rec, reason = self.check(key)
        if rec is not None:
            self._invalid.pop(key, None)
            return rec
        if reason is None and indexed_done:
            reason = f"{self.run_dir(key)}: the run's folder or run.json was removed"
        if reason is not None:
            self._invalid[key] = reason
            with self._sql("write"):
                self.db.execute("DELETE FROM runs WHERE key = ?", (key,))
        return None

    # -- claims (several drivers on one directory) ----------------------------------------
    def _claim_path(self, key: str) -> Path:
        return self.run_dir(key) / artifacts.CLAIM_FILE

    def _claim_text(self) -> str:
        return json.dumps(
            {"host": socket.gethostname(), "pid": os.getpid(), "driver": self.driver, "time": time.time()}
        )

    def claim(self, key: str) -> bool:
        """Take the run for this driver; False if another driver holds a live claim on it.

        The claim file (host, pid, driver id, time) is written whole under a temporary name and
        hard-linked into place, which fails if a claim exists: another driver never sees a
        half-written claim. The owner refreshes its claims (:meth:`heartbeat`, run by a background
        thread). A claim is *expired*, and taken over, when its time is older than the lease
        (whatever its pid: the pid may have been reused by an unrelated process) or, on this host,
        when its process is gone. A claim from another host is judged by its lease only. Only one
        driver at a time may take over an expired claim (a second hard-linked lock file).
        """
        path = self._claim_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".claim.{os.getpid()}.{uuid.uuid4().hex}")
            tmp.write_text(self._claim_text())
        except OSError as e:
            raise StoreError(f"cannot write a claim file: {e.strerror or e}", where=str(path)) from e
        try:
            got = self._link_or_take_over(tmp, path)
        except OSError as e:
            raise StoreError(f"cannot take a claim: {e.strerror or e}", where=str(path)) from e
        finally:
            tmp.unlink(missing_ok=True)
        if got:
            with self._lock:
                self._held.add(key)
            self._start_heartbeat()
        return got

    def _link_or_take_over(self, tmp: Path, path: Path) -> bool:
        for _ in range(3):
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                pass
            seen = _read_claim(path)
            state = self._judge(path, seen)
            if state == "mine":  # ours already: renew it (it may be near its expiry)
                os.replace(tmp, path)
                return True
            if state != "expired":
                return False
            # Expired: remove it only while holding the takeover lock, and only if it is still the
            # claim we judged (another driver may have taken it over meanwhile).
            lock = path.with_name(artifacts.CLAIM_FILE + ".takeover")
            try:
                os.link(tmp, lock)
            except FileExistsError:
                if self._judge(lock, _read_claim(lock)) == "expired":
                    lock.unlink(missing_ok=True)  # a driver died while taking over
                return False
            try:
                if _read_claim(path) == seen:
                    path.unlink(missing_ok=True)
            finally:
                lock.unlink(missing_ok=True)
        return False

    def _judge(self, path: Path, claim: dict[str, Any] | None) -> str:
        """``"absent"``, ``"mine"``, ``"held"`` (by a live driver) or ``"expired"``."""
        if claim is None:
            return "absent"
        if claim.get("driver") == self.driver:
            return "mine"
        now = time.time()
        stamp = claim.get("time")
        if not isinstance(stamp, (int, float)) or stamp > now + self.lease_s:
            try:  # unreadable, an old format, or a time in the future: the file's age decides
                stamp = path.stat().st_mtime
            except FileNotFoundError:
                return "absent"
        if now - stamp > self.lease_s:
            return "expired"
        pid = claim.get("pid")
        if claim.get("host") == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            return "expired"
        return "held"

    def claim_pending(self, keys: Iterable[str]) -> list[str]:
        """Claim every run of ``keys`` that has not validly ended and that no live driver holds
        (never claimed, released, or its claim expired: its driver was killed); returns those
        now held by this driver, in order. A driver that waited for another calls this to take
        over the runs the other left behind."""
        taken = []
        for key in keys:
            if not self.ended_on_disk(key) and self.claim(key):
                if self.ended_on_disk(key):  # ended between the two looks
                    self.release(key)
                else:
                    taken.append(key)
        return taken

    def release(self, key: str) -> None:
        """Give the run up (only if this driver still holds it: a taken-over claim is left alone)."""
        with self._lock:
            self._held.discard(key)
        path = self._claim_path(key)
        if self._judge(path, _read_claim(path)) == "mine":
            path.unlink(missing_ok=True)

    def claimed_elsewhere(self, key: str) -> bool:
        """Whether another driver holds a live (unexpired) claim on the run."""
        path = self._claim_path(key)
        return self._judge(path, _read_claim(path)) == "held"

    def owns(self, key: str) -> bool:
        """Whether this driver's claim on the run is still in place (not expired and taken over)."""
        path = self._claim_path(key)
        return self._judge(path, _read_claim(path)) == "mine"

    def heartbeat(self) -> list[str]:
        """Refresh the time of every claim this driver holds; returns the keys it has lost
        (taken over by another driver after its lease expired), which it forgets."""
        with self._lock:
            held = sorted(self._held)
        lost = []
        for key in held:
            path = self._claim_path(key)
            if self._judge(path, _read_claim(path)) != "mine":
                lost.append(key)
                continue
            tmp = path.with_name(f".claim.{os.getpid()}.{uuid.uuid4().hex}")
            try:  # whole or not at all (a rename); no fsync: a claim outlives no crash
                tmp.write_text(self._claim_text())
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)  # the next beat tries again; a lease spans several
        with self._lock:
            self._held.difference_update(lost)
        return lost

    def _start_heartbeat(self) -> None:
        if self.heartbeat_s <= 0 or self._beat is not None:
            return

        def beat() -> None:
            while not self._stop.wait(self.heartbeat_s):
                self.heartbeat()

        self._beat = threading.Thread(target=beat, name="restudy-claims", daemon=True)
        self._beat.start()


OPEN_WAIT_S = 60.0  # how long opening the index waits for other drivers opening it too


def _open_index(path: Path, wait_s: float = OPEN_WAIT_S) -> sqlite3.Connection:
    """Connect to the index, switch it to WAL and create its tables.

    Drivers that start together on a new folder all do this at once; switching the journal mode
    and creating the tables take locks for which SQLite answers "database is locked" at once
    (without waiting its busy timeout) when another connection holds one. Such an answer is
    retried, with a growing pause, for up to ``wait_s`` seconds; any other error is raised.
    """
    deadline = time.monotonic() + wait_s
    pause = 0.01
    while True:
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=60000")
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            return db
        except sqlite3.OperationalError as e:
            db.close()
            text = str(e).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
        except BaseException:
            db.close()
            raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _read_claim(path: Path) -> dict[str, Any] | None:
    """The claim's fields; None if there is no claim. An unreadable or old-format claim gives the
    fields that can be read (``host:pid`` files of earlier versions have no time)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        claim = json.loads(text)
        return claim if isinstance(claim, dict) else {}
    except ValueError:
        host, _, pid = text.strip().rpartition(":")
        return {"host": host, "pid": int(pid)} if pid.isdigit() else {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class _SqlErrors:
    """Turns an SQLite failure into a ``StoreError`` that names the index file and what to do."""

    def __init__(self, path: Path, doing: str) -> None:
        self.path, self.doing = path, doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, e: BaseException | None, tb: Any) -> bool:
        if e is None or not isinstance(e, (sqlite3.Error, OSError)):
            return False
        text = str(e)
        hint = next((h for k, h in _HINTS.items() if k in text.lower()), None)
        raise StoreError(
            f"cannot {self.doing} the run index: {text}" + (f"; {hint}" if hint else ""), where=str(self.path)
        ) from e
