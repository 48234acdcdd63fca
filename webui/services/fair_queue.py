"""The order waiting jobs run in: round robin by owner, each owner's jobs in their own order, so one
owner's long batch does not starve another's single image."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterator
from typing import Generic, Protocol, TypeVar


class Owned(Protocol):
    @property
    def owner(self) -> str | None: ...


T = TypeVar("T", bound=Owned)


class FairQueue(Generic[T]):
    """Owners take turns: the owner served longest ago (or never) goes next."""

    def __init__(self) -> None:
        self._lanes: dict[Hashable, deque[T]] = {}  # owner → its waiting items, in its order
        self._turns: deque[Hashable] = deque()  # owners with waiting items, next to be served first

    def append(self, item: T) -> None:
        lane = self._lanes.get(item.owner)
        if lane is None:
            lane = self._lanes[item.owner] = deque()
            self._turns.append(item.owner)
        lane.append(item)

    def popleft(self) -> T:
        owner = self._turns.popleft()
        lane = self._lanes[owner]
        item = lane.popleft()
        if lane:
            self._turns.append(owner)
        else:
            del self._lanes[owner]
        return item

    def remove(self, item: T) -> None:
        lane = self._lanes[item.owner]
        lane.remove(item)
        if not lane:
            del self._lanes[item.owner]
            self._turns.remove(item.owner)

    def move(self, item: T, by: int) -> list[T]:
        """Move `item` `by` places within its owner's jobs (negative: sooner), clamped to the ends;
        returns the owner's jobs in their new order."""
        lane = self._lanes[item.owner]
        index = lane.index(item)
        target = min(max(index + by, 0), len(lane) - 1)
        del lane[index]
        lane.insert(target, item)
        return list(lane)

    def __contains__(self, item: object) -> bool:
        return any(item in lane for lane in self._lanes.values())

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def __bool__(self) -> bool:
        return bool(self._turns)

    def __iter__(self) -> Iterator[T]:
        """The items in the order they will be served, if nothing else is added."""
        lanes = {owner: list(lane) for owner, lane in self._lanes.items()}
        turns = list(self._turns)
        depth = 0
        while turns:
            # round `depth`: each owner's depth-th item, in turn order; owners run out in time
            turns = [owner for owner in turns if len(lanes[owner]) > depth]
            for owner in turns:
                yield lanes[owner][depth]
            depth += 1
