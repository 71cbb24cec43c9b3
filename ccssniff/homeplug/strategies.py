"""Hypothesis strategies derived from the message layouts (test extra: needs hypothesis).

``messages(cls)`` draws instances of one message class with every field in range, arrays of
bounded length and conditional fields consistent with their conditions; ``any_message()``
draws from every definition. ``enums_only=True`` keeps enumerated fields to defined values.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .fields import Array, Bytes, Count, Item, Mac, Nibbles, Record, Rest, UInt
from .mme import Mme, definition, definitions
from .notation import MacAddress

MAX_ELEMENTS = 6

macs = st.binary(min_size=6, max_size=6).map(MacAddress)
# A frame's source address is an individual one (group bit clear), as IEEE 802.3 requires.
unicast_macs = macs.map(lambda mac: MacAddress(bytes([mac[0] & 0xFE]) + mac[1:]))


def _item_strategy(item: Item, enums_only: bool) -> st.SearchStrategy:
    if isinstance(item, Mac):
        return macs
    if isinstance(item, UInt):
        if enums_only and item.enum:
            return st.sampled_from(sorted(item.enum))
        return st.integers(0, (1 << (8 * item.size)) - 1)
    if isinstance(item, Bytes):
        return st.binary(min_size=item.size, max_size=item.size)
    if isinstance(item, Array):
        element = item.element
        inner = _item_strategy(element, enums_only) if isinstance(element, UInt) else records(element, enums_only)
        return st.lists(inner, max_size=MAX_ELEMENTS)
    if isinstance(item, Nibbles):
        return st.lists(st.integers(0, 15), max_size=4 * MAX_ELEMENTS)
    if isinstance(item, Rest):
        return st.binary(max_size=24)
    raise TypeError(f"no strategy for {type(item).__name__}")


def _layout_values(layout: tuple[Item, ...], enums_only: bool) -> st.SearchStrategy[dict]:
    @st.composite
    def draw_values(draw) -> dict:
        values: dict = {}
        for item in layout:
            if isinstance(item, Count):
                continue
            if item.when is not None and not item.when(values):
                values[item.name] = item.absent()
                continue
            values[item.name] = draw(_item_strategy(item, enums_only))
        return values

    return draw_values()


def records(cls: type[Record], enums_only: bool = False) -> st.SearchStrategy[Record]:
    """Instances of a nested record class (e.g. NetworkInfo)."""
    return _layout_values(cls.layout, enums_only).map(lambda values: cls(**values))


def messages(cls: type[Mme], enums_only: bool = False, mmv: int | None = None) -> st.SearchStrategy[Mme]:
    """Instances of ``cls``: random addresses and fields; MMV ``mmv``, or 0 or 1 where ``cls`` is their layout."""
    candidates = [mmv] if mmv is not None else [0, 1]
    mmvs = st.sampled_from([v for v in candidates if definition(cls.mmtype, v) is cls])

    @st.composite
    def draw_message(draw) -> Mme:
        version = draw(mmvs)
        fragment = st.integers(0, 255) if version else st.just(0)
        return cls(dst=draw(macs), src=draw(unicast_macs), mmv=version, fmi=draw(fragment), fmsn=draw(fragment),
                   **draw(_layout_values(cls.layout, enums_only)))

    return draw_message()


def any_message(enums_only: bool = False) -> st.SearchStrategy[Mme]:
    """An instance of any defined message."""
    return st.one_of([messages(cls, enums_only) for cls in definitions()])
