"""Small running statistics for deployment health: a decaying average and an outcome window.

Both take the time as an argument (monotonic seconds) and do O(1) work per sample.
"""

from __future__ import annotations


class Ewma:
    """Exponentially weighted moving average: each sample moves the value `alpha` of the way
    toward it, so old samples fade geometrically. `updated` says how old the value is."""

    __slots__ = ("samples", "updated", "value")

    def __init__(self) -> None:
        self.value: float | None = None
        self.updated = 0.0
        self.samples = 0

    def update(self, sample: float, now: float, alpha: float) -> None:
        value = self.value
        self.value = sample if value is None else value + alpha * (sample - value)
        self.updated = now
        self.samples += 1

    def fresh(self, now: float, stale_after: float) -> float | None:
        """The value, or None when there is none or it is older than `stale_after` seconds."""
        value = self.value
        if value is None or now - self.updated > stale_after:
            return None
        return value


class OutcomeWindow:
    """Successes and failures over the last `window` seconds, in `buckets` time slices
    (a slice expires whole, so the window is exact to window/buckets seconds)."""

    __slots__ = ("_bad", "_epochs", "_good", "_n", "_width")

    def __init__(self, window: float, buckets: int = 10) -> None:
        self._n = buckets
        self._width = window / buckets
        self._good = [0] * buckets
        self._bad = [0] * buckets
        self._epochs = [-1] * buckets  # which time slice each bucket currently counts

    def add(self, ok: bool, now: float) -> None:
        epoch = int(now / self._width)
        i = epoch % self._n
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._good[i] = 0
            self._bad[i] = 0
        if ok:
            self._good[i] += 1
        else:
            self._bad[i] += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(outcomes, failures) within the window."""
        oldest = int(now / self._width) - self._n + 1
        total = failures = 0
        for i, epoch in enumerate(self._epochs):
            if epoch >= oldest:
                total += self._good[i] + self._bad[i]
                failures += self._bad[i]
        return total, failures

    def error_rate(self, now: float) -> float:
        total, failures = self.counts(now)
        return failures / total if total else 0.0

    def reset(self) -> None:
        self._epochs = [-1] * self._n
