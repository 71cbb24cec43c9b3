"""A time series of bounded size that keeps its extremes when it thins itself out."""
from __future__ import annotations

# Points kept per series at most; a plot 1280 px wide shows no more than this.
DEFAULT_CAPACITY = 2000

Point = tuple  # (time, value)


def _extremes(points: list[Point]) -> tuple[Point, ...]:
    """The lowest and the highest point of a run, in time order (one point if they are the same)."""
    low = min(points, key=lambda point: point[1])
    high = max(points, key=lambda point: point[1])
    if low is high:
        return (low,)
    return (low, high) if low[0] <= high[0] else (high, low)


class Series:
    """(time, value) points in time order, at most ``capacity`` of them.

    Points go into buckets of ``stride`` consecutive points, each kept as its minimum and
    maximum; when the buckets fill the capacity, neighbours merge and the stride doubles. So
    every stretch of the trace keeps the same resolution, peaks and dips survive however long
    the trace is, and memory stays constant.
    """

    __slots__ = ("capacity", "unit", "seen", "_buckets", "_open", "_stride")

    def __init__(self, unit: str | None = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = max(8, capacity)
        self.unit = unit
        self.seen = 0  # points added, before thinning
        self._buckets: list[tuple[Point, ...]] = []
        self._open: list[Point] = []
        self._stride = 1

    def add(self, time: float, value: float) -> None:
        self.seen += 1
        self._open.append((time, value))
        if len(self._open) >= self._stride:
            self._buckets.append(_extremes(self._open) if self._stride > 1 else (self._open[0],))
            self._open = []
            if 2 * len(self._buckets) >= self.capacity:
                self._merge()

    def _merge(self) -> None:
        buckets = self._buckets
        merged = [_extremes(list(buckets[index] + buckets[index + 1])) for index in range(0, len(buckets) - 1, 2)]
        if len(buckets) % 2:
            merged.append(buckets[-1])
        self._buckets = merged
        self._stride *= 2

    def points(self) -> list[Point]:
        out = [point for bucket in self._buckets for point in bucket]
        if self._open:
            out.extend(_extremes(self._open))
        return out

    @property
    def times(self) -> list[float]:
        return [time for time, _ in self.points()]

    @property
    def values(self) -> list[float]:
        return [value for _, value in self.points()]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets) + (min(2, len(self._open)))

    @property
    def minimum(self) -> float | None:
        values = self.values
        return min(values) if values else None

    @property
    def maximum(self) -> float | None:
        values = self.values
        return max(values) if values else None
