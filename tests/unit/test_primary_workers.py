"""The primary's connection workers: kept for the next connection, never waited for, ended when idle."""
from __future__ import annotations

import queue
import threading
import time

from safeq_primary.workers import Workers


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def test_one_connection_after_another_is_served_by_the_same_thread():
    workers, ran = Workers(), []
    for _ in range(5):
        done = threading.Event()
        workers.run(lambda d=done: (ran.append(threading.get_ident()), d.set()))
        assert done.wait(5)
        assert wait_for(lambda: workers.idle == 1)
    assert len(ran) == 5 and len(set(ran)) == 1


def test_a_busy_worker_is_never_waited_for():
    workers, release, started = Workers(), threading.Event(), []
    for _ in range(3):
        workers.run(lambda: (started.append(threading.get_ident()), release.wait(5)))
    assert wait_for(lambda: len(started) == 3)  # three at once: each on its own thread
    assert len(set(started)) == 3
    release.set()
    assert wait_for(lambda: workers.idle == 3)


def test_idle_workers_end_and_jobs_queued_as_they_time_out_still_run():
    workers = Workers(idle_seconds=0.01, name="idle-workers-test")
    ran = []
    for i in range(200):  # jobs arrive around the idle timeout, some while a worker gives up
        workers.run(ran.append, i)
        time.sleep(0.0001 * (i % 150))
    assert wait_for(lambda: len(ran) == 200)
    assert sorted(ran) == list(range(200))
    mine = lambda: [t for t in threading.enumerate() if t.name == "idle-workers-test"]  # noqa: E731
    assert wait_for(lambda: not mine() and workers.idle == 0), mine()


class TimesOutAsAJobArrives:
    """The idle worker's wait ends in a timeout at the moment a job is queued for it."""

    def __init__(self):
        self.jobs, self.arrived = queue.SimpleQueue(), threading.Event()

    def put(self, item):
        self.jobs.put(item)
        self.arrived.set()

    def get(self, timeout):
        self.arrived.wait(5)
        raise queue.Empty

    def get_nowait(self):
        return self.jobs.get_nowait()


def test_a_job_queued_for_a_worker_that_just_timed_out_still_runs():
    workers, ran = Workers(idle_seconds=0.01), []
    workers._jobs = TimesOutAsAJobArrives()
    workers.run(ran.append, "first")
    assert wait_for(lambda: workers.idle == 1)
    workers.run(ran.append, "second")  # handed to the idle worker, whose wait is ending
    assert wait_for(lambda: ran == ["first", "second"], 2), ran
