"""One way for the API to make a configuration change: store it, hand it over, rebuild this node's list.

Cameras, devices and device profiles all go through ``hand_over``: the change commits a row of the SQL
store and wakes every role on a Redis stream (``ingest.changes``); this node's list is then rebuilt from
the store (``gateway.config_state``). The store or Redis away is a 503 the caller may retry — retrying is
safe, a change is an upsert of the item's row.

Cameras and devices are both lists of items with an id that the API adds, replaces and removes the same
way; ``ItemKind`` is that way, once: find or 404, the body's id against the path's, hand over, audit.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import HTTPException, Request, status

from gateway.api.parts import ApiRuntime
from gateway.auth import Principal
from gateway.config_state import HANDOVER_ERRORS, ConfigState
from ingest.changes import ConfigChanges


def hand_over(what: str, change: Callable[[], None], reload: Callable[[], None] | None = None) -> None:
    """Run ``change`` (store + announce); rebuild this node's list either way; a store or Redis error is a 503."""
    try:
        change()
    except HANDOVER_ERRORS as exc:
        if reload is not None:
            ConfigState.safely(reload)  # the row may be committed though Redis did not answer
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"{what} change not handed over ({type(exc).__name__}); retry") from exc
    if reload is not None:
        ConfigState.safely(reload)


class Item(Protocol):
    """What a camera or a device is to the change path: an id and a JSON form."""

    id: str

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...


ItemT = TypeVar("ItemT", bound=Item)


@dataclass(frozen=True)
class ItemKind(Generic[ItemT]):
    """A kind of item changed through the API: where this node lists it and how a change reaches every node."""

    name: str  # "camera": in messages, audit actions ("camera.add") and targets ("camera:cam-1")
    items: Callable[[ApiRuntime], Sequence[ItemT]]
    changes: Callable[[ApiRuntime], ConfigChanges]
    reload: Callable[[ApiRuntime], Callable[[], None]]

    def find(self, rt: ApiRuntime, item_id: str) -> ItemT | None:
        return next((it for it in self.items(rt) if it.id == item_id), None)

    def existing(self, rt: ApiRuntime, item_id: str) -> ItemT:
        """The item this node lists under ``item_id``; 404 when there is none."""
        found = self.find(rt, item_id)
        if found is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no such {self.name}")
        return found

    def absent(self, rt: ApiRuntime, item: ItemT, hint: str = "") -> None:
        """409 when an item with ``item``'s id exists already (an add never replaces)."""
        if self.find(rt, item.id) is not None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"{self.name} {item.id!r} exists{hint}")

    def replaced(self, rt: ApiRuntime, item_id: str, body: ItemT) -> ItemT:
        """The item a PUT replaces (404 if none); 422 when the body names another id than the path."""
        old = self.existing(rt, item_id)
        if body.id != item_id:
            raise HTTPException(422, "id: the body's id must match the path")
        return old

    def put(self, rt: ApiRuntime, item: ItemT, *, new: bool, request: Request, principal: Principal, **audit: Any) -> None:
        """Store and announce ``item`` (an add when ``new``), rebuild this node's list, audit it."""
        hand_over(self.name, lambda: self.changes(rt).put(item.model_dump(mode="json"), new=new), self.reload(rt))
        self._audit(request, principal, "add" if new else "update", item.id, **audit)

    def remove(self, rt: ApiRuntime, item_id: str, *, request: Request, principal: Principal) -> ItemT:
        """Store and announce the removal of ``item_id`` (404 if this node lists none), rebuild the list, audit it."""
        old = self.existing(rt, item_id)
        hand_over(self.name, lambda: self.changes(rt).remove(item_id), self.reload(rt))
        self._audit(request, principal, "remove", item_id)
        return old

    def _audit(self, request: Request, principal: Principal, action: str, item_id: str, **detail: Any) -> None:
        request.app.state.audit.record(principal.username, f"{self.name}.{action}", f"{self.name}:{item_id}", **detail)
