"""One trace through the pipeline into the session model: the entry point for every consumer.

``decode_trace`` is what ``decode``, ``report``, ``batch`` and ``listen`` call; outcomes and
causes are computed here once (in the session model) and read by all of them.
"""
from __future__ import annotations

from typing import Callable, Iterable

from ccssniff.decode.events import Event
from ccssniff.decode.pipeline import Pipeline
from ccssniff.decode.session import TraceSession

EventSink = Callable[[Event, float], None]


def decode_trace(packets: Iterable, *, pipeline: Pipeline | None = None, on_event: EventSink | None = None,
                 on_packet: Callable[[int, object], None] | None = None) -> TraceSession:
    """Feed every packet to ``pipeline`` and the session model; return the finished model.

    ``on_event(event, start_time)`` sees every event as it is made (timeline writers, tables);
    ``on_packet(count, packet)`` sees every packet (progress bars).
    """
    pipeline = pipeline if pipeline is not None else Pipeline()
    trace = TraceSession()
    add = trace.add
    feed = pipeline.feed
    start = None
    for count, packet in enumerate(packets):
        events = feed(packet)
        if on_packet is not None:
            on_packet(count, packet)
        if events:
            if start is None:
                start = pipeline.start_time
            for event in events:
                add(event)
                if on_event is not None:
                    on_event(event, start)
    start = pipeline.start_time if start is None else start
    for event in pipeline.finish():
        add(event)
        if on_event is not None:
            on_event(event, start)
    trace.finish(pipeline)
    return trace
