"""Peak resident memory of a block of code, sampled from /proc (torch's CPU allocations included)."""

from __future__ import annotations

import os
import threading
import time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakMemory:
    """with PeakMemory() as peak: ...; peak.extra_bytes is the peak RSS above the RSS at entry."""

    def __init__(self, interval_s: float = 0.002):
        self.interval_s = interval_s
        self.extra_bytes = 0
        self.seconds = 0.0

    def _sample(self):
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_bytes())
            time.sleep(self.interval_s)

    def __enter__(self):
        self._start_rss = self._peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        self.extra_bytes = self._peak - self._start_rss
