"""The slots bar of the commands that move slots (``headroom redis rebalance/drain``,
``headroom local up/scale``): phase text and a bar of slots moved, with keys, megabytes
and the slot in flight alongside, fed by :class:`ReshardProgress`; shown on a terminal
only (never with ``--json``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from headroom.controller.redis.reports import ReshardProgress


class SlotsBar:
    """What a scaler or resharder feeds: :meth:`phase` text and :meth:`update` counts; a
    bar that is not shown takes both and draws nothing."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    @property
    def shown(self) -> bool:
        return self.progress is not None

    def phase(self, text: str) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.task = self.progress.add_task(text, total=None, keys=0, mb=0.0, current="")
        else:
            self.progress.update(self.task, description=text)

    def update(self, progress: ReshardProgress) -> None:
        if self.progress is None:
            return
        if self.task is None:
            self.phase("migrating slots")
        assert self.task is not None
        self.progress.update(
            self.task,
            total=max(progress.slots_total, 1),
            completed=progress.slots_done,
            keys=progress.keys_moved,
            mb=progress.bytes_moved / 1e6,
            current=progress.current,
        )


@contextmanager
def slots_bar(show: bool, console: Console) -> Iterator[SlotsBar]:
    """A :class:`SlotsBar` drawn on ``console`` while the block runs, when ``show``."""
    if not show:
        yield SlotsBar(None)
        return
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("slots  {task.fields[keys]:,} keys  {task.fields[mb]:.1f} MB"),
        TextColumn("{task.fields[current]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    with bar:
        yield SlotsBar(bar)
