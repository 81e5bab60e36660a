"""A lock for "one thread at a time" that never blocks and survives fork.

nnc refuses a second thread instead of making it wait: a fit holds its
model for minutes and calls back into user code, where waiting on another
thread that waits on the model would hang both.
"""
import os
import threading
import weakref

_ALL = weakref.WeakSet()  # every ProcessLock, renewed in a forked child


class ProcessLock:
    """``try_acquire()`` (non-blocking) returns the acquired lock, to be
    released, or None; re-entrant on request. A forked child gets a fresh,
    free lock (the thread that held the parent's does not exist there), and
    so do pickles and copies."""

    def __init__(self, reentrant=False):
        self._reentrant = reentrant
        self._lock = self._new()
        _ALL.add(self)

    def _new(self):
        return threading.RLock() if self._reentrant else threading.Lock()

    def try_acquire(self):
        lock = self._lock
        return lock if lock.acquire(blocking=False) else None

    def __reduce__(self):
        return ProcessLock, (self._reentrant,)


def _renew_after_fork():
    for lock in list(_ALL):
        lock._lock = lock._new()


if hasattr(os, "register_at_fork"):  # (POSIX; elsewhere there is no fork)
    os.register_at_fork(after_in_child=_renew_after_fork)
