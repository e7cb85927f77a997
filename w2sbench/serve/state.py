"""The service's memory, on disk, so that kill -9 loses nothing: the queue, budgets and released answers in
SQLite (every change one transaction, synchronous), the log as append-only JSON lines (fsync per line), and
every submitted code stored once by its hash.

Charging: a submission that runs the agent's code (the probe, then the job) is charged one evaluation
before any of it runs. Compute seconds are reserved before the code runs and settled when it ends, in one
transaction each: the probe reserves the least of its limit and the compute left, a job the least of the
campaign's method limit and what is left after every other reservation (its time limit), and each is
charged its wall time, never more than it reserved. So the sum charged and reserved never passes the
budget, however many calls race. A job that was running when the service died is queued again on start
with its reservation and charged when it finishes, so each job is charged exactly once.

    STATE/service.db    jobs, agents' spending and best released scores, nominations, finals
    STATE/log.jsonl     every call and every job event, never rewritten
    STATE/code/SHA/     each submitted method's files (SHA: the hash of its files, as results record it)
    STATE/scores/ID.npy per job, its validation correctness (for the paired rule), kept server-side

A code folder is written under a temporary name and renamed (removed when the write fails); what a crash
left half-written is removed on the next start (once an hour old: `serve finals` shares a running
service's state).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, agent TEXT NOT NULL, status TEXT NOT NULL,
    method TEXT NOT NULL, description TEXT NOT NULL, hyperparameters TEXT NOT NULL, code_sha256 TEXT NOT NULL,
    submitted REAL NOT NULL, started REAL, finished REAL, reason TEXT, compute_s REAL,
    released REAL, new_best INTEGER, flags TEXT, true_score REAL, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY, evaluations_used INTEGER NOT NULL DEFAULT 0, compute_used REAL NOT NULL DEFAULT 0,
    best_released REAL, best_job TEXT
);
CREATE TABLE IF NOT EXISTS nominations (agent TEXT NOT NULL, job TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (agent, job));
CREATE TABLE IF NOT EXISTS finals (job TEXT PRIMARY KEY, result TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS probes (code_sha256 TEXT NOT NULL, class_name TEXT NOT NULL, description TEXT NOT NULL,
    at REAL NOT NULL, PRIMARY KEY (code_sha256, class_name));
"""
# columns added since the first version of the schema (a state folder from then is brought up to date)
COLUMNS = {
    "jobs": {"reserved_s": "REAL"},
    "agents": {
        "compute_reserved": "REAL NOT NULL DEFAULT 0",
        "releases_used": "INTEGER NOT NULL DEFAULT 0",
        "threshold_noise": "REAL",
    },
}


class State:
    """One service's state folder. Thread-safe (one lock around one connection)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        for sub in ("code", "scores"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.folder / "service.db", check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)
        for table, columns in COLUMNS.items():
            have = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        for leftover in (self.folder / "code").glob("*.tmp*"):  # a write that a crash cut short (not one under way
            if time.time() - leftover.stat().st_mtime > 3600:  # in a service that shares the state: finals)
                shutil.rmtree(leftover, ignore_errors=True)
        self.lock = threading.RLock()
        self.log_path = self.folder / "log.jsonl"

    # ---- the log ----------------------------------------------------------------------------------------
    def log(self, event: str, **fields: Any) -> None:
        line = json.dumps({"time": round(time.time(), 3), "event": event, **fields}, sort_keys=True, default=str)
        with self.lock, open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ---- transactions -----------------------------------------------------------------------------------
    def transaction(self):
        return _Transaction(self)

    def query(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def agent_row(self, name: str) -> sqlite3.Row:
        with self.lock:
            self.db.execute("INSERT OR IGNORE INTO agents (name) VALUES (?)", (name,))
            return self.db.execute("SELECT * FROM agents WHERE name = ?", (name,)).fetchone()

    def requeue_interrupted(self) -> list[str]:
        """Jobs that were running when the service stopped go back to the queue (charged when they end)."""
        with self.transaction() as db:
            ids = [r["id"] for r in db.execute("SELECT id FROM jobs WHERE status = 'running'")]
            db.execute("UPDATE jobs SET status = 'queued', started = NULL WHERE status = 'running'")
        return ids

    def rebuild_reservations(self) -> None:
        """Each agent's reserved compute is what its queued and running jobs reserved (on start, when no probe
        of this service can be under way)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE agents SET compute_reserved = COALESCE((SELECT SUM(reserved_s) FROM jobs WHERE jobs.agent"
                " = agents.name AND jobs.status IN ('queued', 'running')), 0)"
            )

    def next_seq(self, db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self.db.close()


class _Transaction:
    def __init__(self, state: State):
        self.state = state

    def __enter__(self) -> sqlite3.Connection:
        self.state.lock.acquire()
        self.state.db.execute("BEGIN IMMEDIATE")
        return self.state.db

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.state.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.state.lock.release()
