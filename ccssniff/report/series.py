"""A time series of bounded size that keeps its extremes when it thins itself out."""
from __future__ import annotations

# Points kept per series before thinning; a plot 1280 px wide shows no more than this.
DEFAULT_CAPACITY = 2000


class Series:
    """(time, value) points in time order, at most ``capacity`` of them.

    When full, every run of four points is reduced to its minimum and maximum (in time order),
    so peaks and dips survive however long the trace is, and memory stays constant.
    """

    __slots__ = ("times", "values", "capacity", "unit", "seen")

    def __init__(self, unit: str | None = None, capacity: int = DEFAULT_CAPACITY) -> None:
        self.times: list[float] = []
        self.values: list[float] = []
        self.capacity = max(8, capacity)
        self.unit = unit
        self.seen = 0  # points added, before thinning

    def add(self, time: float, value: float) -> None:
        self.seen += 1
        self.times.append(time)
        self.values.append(value)
        if len(self.times) >= self.capacity:
            self._thin()

    def _thin(self) -> None:
        times, values = self.times, self.values
        kept_times: list[float] = []
        kept_values: list[float] = []
        for start in range(0, len(times), 4):
            stop = min(start + 4, len(times))
            low = min(range(start, stop), key=values.__getitem__)
            high = max(range(start, stop), key=values.__getitem__)
            for index in sorted({low, high}):
                kept_times.append(times[index])
                kept_values.append(values[index])
        self.times, self.values = kept_times, kept_values

    def __len__(self) -> int:
        return len(self.times)

    @property
    def minimum(self) -> float | None:
        return min(self.values) if self.values else None

    @property
    def maximum(self) -> float | None:
        return max(self.values) if self.values else None
