"""A lock for "one thread at a time" that never blocks and survives fork.

nnc refuses a second thread instead of making it wait: a fit holds its
model for minutes and calls back into user code, where waiting on another
thread that waits on the model would hang both.
"""
import os
import threading


class ProcessLock:
    """``try_acquire()`` (non-blocking) returns the acquired lock, to be
    released, or None; re-entrant on request. A forked child gets a fresh,
    free lock (the thread that held the parent's does not exist there), and
    so do pickles and copies."""

    _renewing = threading.Lock()

    def __init__(self, reentrant=False):
        self._reentrant = reentrant
        self._pid, self._lock = os.getpid(), self._new()

    def _new(self):
        return threading.RLock() if self._reentrant else threading.Lock()

    def try_acquire(self):
        if self._pid != os.getpid():
            with ProcessLock._renewing:
                if self._pid != os.getpid():
                    self._pid, self._lock = os.getpid(), self._new()
        lock = self._lock
        return lock if lock.acquire(blocking=False) else None

    def __reduce__(self):
        return ProcessLock, (self._reentrant,)
