"""Scan jobs for `regen serve`: a long record's scan runs in the server's worker pool while the
client polls `GET /v1/scan/{job_id}` for its progress and, once done, its result.

Jobs live in the server's memory and, given a `store` folder (the home's `scan-jobs/`), on
disk: each job's state is written there when it is accepted, every SAVE_S while it runs, and
when it ends (atomically: a temporary file renamed), with the id of the process running it.
So another process of the same server (`serve_processes`) answers a poll from the file, and a
restarted server still answers: a finished job with its result, a job whose process is gone
before it finished as failed, saying so. A finished job (done or failed) is kept `ttl_s`
seconds and then forgotten (404), its files too; at most `max_jobs` are queued or running at
once (per process). Ids are random (128 bits), so one client cannot guess another's job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from regen.errors import RegenError, TooManyJobs

log = logging.getLogger("regen.server")
Progress = Callable[[int, int], None]      # (windows done, windows in all)
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")   # what token_urlsafe makes; nothing else is read
SWEEP_S = 60.0   # expired job files are looked for at most this often
SAVE_S = 1.0     # a running job's progress is written at most this often
LOST = ("the server stopped while this scan job was queued or running; submit the scan again")


@dataclass
class Job:
    """One scan job. status: "queued" | "running" | "done" | "failed". result: the answer's
    JSON bytes once done; error: one line once failed."""

    id: str
    created_s: float
    status: str = "queued"
    done: int = 0
    total: int = 0
    result: bytes | None = None
    error: str | None = None
    finished_s: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self) -> float:
        """Fraction of the windows scanned, 0..1."""
        if self.status == "done":
            return 1.0
        return round(self.done / self.total, 4) if self.total else 0.0

    def update(self, done: int, total: int) -> None:
        with self._lock:
            self.status, self.done, self.total = "running", done, total

    def to_json_bytes(self) -> bytes:
        """{"job_id", "status", "progress", "windows_done", "windows"} + "result" (the scan's
        JSON, as sent by POST /v1/scan) when done, "error" when failed."""
        import json

        head = {"job_id": self.id, "status": self.status, "progress": self.progress(),
                "windows_done": self.done, "windows": self.total}
        if self.status == "failed":
            head["error"] = self.error
        body = json.dumps(head).encode()
        if self.status == "done" and self.result is not None:
            body = body[:-1] + b', "result": ' + self.result + b"}"
        return body


class ScanJobs:
    """The server's scan jobs, run with `limiter` (the worker pool's) on the event loop that
    calls `submit`. clean: what a failed job's error becomes before a client sees it (paths,
    secrets). clock: seconds (time.monotonic)."""

    def __init__(self, limiter: anyio.CapacityLimiter, ttl_s: float, max_jobs: int,
                 clean: Callable[[str], str] = str, clock: Callable[[], float] = time.monotonic,
                 store: Path | None = None):
        self.limiter, self.ttl_s, self.max_jobs = limiter, ttl_s, max_jobs
        self.clean, self.clock, self.store = clean, clock, store
        self._jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._swept = -math.inf
        if store is not None:
            store.mkdir(parents=True, exist_ok=True)

    def expire(self) -> None:
        now = self.clock()
        for k in [k for k, j in self._jobs.items()
                  if j.finished_s is not None and now - j.finished_s > self.ttl_s]:
            del self._jobs[k]
        # files by wall time (they outlive the process's clock), and at most every
        # SWEEP_S: clients poll often, and listing the folder each time is needless work
        if self.store is not None and now - self._swept >= min(SWEEP_S, self.ttl_s):
            self._swept = now
            cutoff = time.time() - self.ttl_s
            for f in self.store.glob("*.json"):
                try:
                    if f.stat().st_mtime < cutoff:
                        f.unlink()
                except OSError:
                    pass

    def get(self, job_id: str) -> Job | None:
        self.expire()
        return self._jobs.get(job_id) or self._load(job_id)

    def _path(self, job_id: str) -> Path | None:
        if self.store is None or not JOB_ID.match(job_id):
            return None
        return self.store / f"{job_id}.json"

    def _save(self, job: Job) -> None:
        """The job's state on disk (result included once done), written atomically; a failure
        to write is logged, never fails the job."""
        path = self._path(job.id)
        if path is None:
            return
        state = {"status": job.status, "done": job.done, "total": job.total,
                 "error": job.error, "pid": os.getpid()}
        body = json.dumps(state).encode()
        if job.status == "done" and job.result is not None:
            body = body[:-1] + b', "result": ' + job.result + b"}"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(body)
            os.replace(tmp, path)
        except OSError as exc:
            log.error("scan job %s: state not saved (%s)", job.id, exc)

    def _load(self, job_id: str) -> Job | None:
        """A job another process wrote: finished ones as they ended; unfinished ones as last
        saved while the process running them lives (not kept: the next poll reads the file
        again), else failed with LOST (an earlier run of the server)."""
        path = self._path(job_id)
        try:
            if path is None or path.stat().st_mtime < time.time() - self.ttl_s:
                return None                 # unknown, or expired (the sweep removes it)
            state = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        job = Job(job_id, self.clock(), finished_s=self.clock(),
                  done=int(state.get("done") or 0), total=int(state.get("total") or 0))
        if state.get("status") == "done" and "result" in state:
            job.status, job.result = "done", json.dumps(state["result"]).encode()
        elif state.get("status") == "failed":
            job.status, job.error = "failed", str(state.get("error") or "failed")
        elif state.get("status") in ("queued", "running") and _alive(state.get("pid")):
            job.status, job.finished_s = str(state["status"]), None
            return job
        else:
            job.status, job.error = "failed", LOST
        self._jobs[job_id] = job
        return job

    def submit(self, work: Callable[[Progress], bytes]) -> Job:
        """Start `work(on_progress) -> answer bytes` in the pool; the job, queued. Raises
        TooManyJobs when max_jobs are queued or running."""
        self.expire()
        active = sum(j.finished_s is None for j in self._jobs.values())
        if active >= self.max_jobs:
            raise TooManyJobs(f"{active} scan jobs are queued or running (setting "
                              f"scan_max_jobs={self.max_jobs}); retry when one has finished")
        job = Job(secrets.token_urlsafe(16), self.clock())
        self._jobs[job.id] = job
        self._save(job)
        task = asyncio.get_running_loop().create_task(self._run(job, work))
        self._tasks.add(task)                  # a reference, so the task is not collected
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, work: Callable[[Progress], bytes]) -> None:
        saved = -math.inf

        def progress(done: int, total: int) -> None:
            nonlocal saved
            job.update(done, total)
            if self.clock() - saved >= SAVE_S:       # for polls other processes answer
                saved = self.clock()
                self._save(job)

        def go() -> bytes:          # in a worker thread, once the pool has room
            job.status = "running"
            self._save(job)
            return work(progress)

        try:
            result = await anyio.to_thread.run_sync(go, limiter=self.limiter)
            job.result, job.status = result, "done"
        except RegenError as exc:
            job.error, job.status = self.clean(str(exc)), "failed"
        except Exception as exc:  # noqa: BLE001 - the client gets a line, the log the detail
            log.error("scan job %s failed: %r", job.id, exc)
            job.error, job.status = "internal error; the server's log has the details", "failed"
        job.finished_s = self.clock()
        await anyio.to_thread.run_sync(self._save, job)


def _alive(pid: object) -> bool:
    """Whether another process with this id runs (a job's own process answers from memory;
    ids are reused only long after, and a finished job's file says it finished)."""
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["Job", "ScanJobs"]
