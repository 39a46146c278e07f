"""Rendezvous (highest-random-weight) hashing of cameras over the live members of the video pool.

Why HRW: every member computes the same owner for a camera from nothing but the member list, with no
coordinator; adding a member moves to it only the cameras it now wins, and removing one moves only the
cameras it owned (each to the member that scored second for it). Pure functions, so the placement is
unit-tested without Redis.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable


def weight(member: str, item: str) -> int:
    """The score of ``member`` for ``item``: 64 bits of BLAKE2b over both names (stable across processes and
    Python versions, unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{member}\0{item}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(item: str, members: Iterable[str]) -> str | None:
    """The member that wins ``item``; ties (never seen with 64 bits) go to the greater name. None: no members."""
    best: tuple[int, str] | None = None
    for m in members:
        score = (weight(m, item), m)
        if best is None or score > best:
            best = score
    return best[1] if best is not None else None


def assign(items: Iterable[str], members: Iterable[str]) -> dict[str, str]:
    """item → owning member, for every item (empty when there are no members)."""
    ms = sorted(set(members))
    if not ms:
        return {}
    return {i: owner(i, ms) for i in items}  # type: ignore[misc]


def share(items: Iterable[str], members: Iterable[str], me: str) -> set[str]:
    """The items ``me`` owns among ``members`` (``me`` counts as a member even if the list missed it)."""
    ms = set(members) | {me}
    return {i for i, m in assign(items, ms).items() if m == me}
