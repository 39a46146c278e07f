"""Shared-memory rings of pictures: how frames and detector crops cross process boundaries without pickling.

Why: a 640x360 BGR frame is 690 kB and a 320 px crop 300 kB; pushing them through a pipe costs a copy into the
kernel, a copy out and a pickle round trip per hop. As Frigate's SharedMemoryFrameManager does, the picture goes
into a ``multiprocessing.shared_memory`` segment once and only a small message (ring name, slot, generation)
travels over the pipe; the reader copies it out (or uses it in place) and checks the slot was not rewritten
meanwhile.

One ring per camera and purpose, one writer per ring (the worker process that owns the camera), any number of
readers. Each slot carries a generation number: the writer marks the slot as being written (generation 0),
copies the picture in, then publishes the new generation; a reader copies and accepts the copy only if the
generation it was told about is still there after the copy (a seqlock), so it never uses a torn picture.

Two uses:

* ``latest``-style (frames for the parent's snapshot/live view): the writer cycles over the slots; readers take
  the newest complete slot.
* queue-style (crops for the detector): a slot stays *busy* from ``put`` until the writer's ``release`` (the
  detector answered). When every slot is busy the oldest is overwritten — its request is lost and counted as
  skipped (``Ring.skipped``), so a slow or dead detector never blocks the camera and never grows memory.

Segments are named ``<prefix><kind><n>`` with a per-engine prefix ``gwv<pid>x<token>_``; whoever creates a ring
unlinks it, and ``remove_leftovers`` unlinks the segments of engines whose process no longer exists (a SIGKILL'd
GridWatch leaves its segments in /dev/shm otherwise).
"""
from __future__ import annotations

import os
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np

SHM_DIR = Path("/dev/shm")
PREFIX_ROOT = "gwv"
_PREFIX_RE = re.compile(rf"^{PREFIX_ROOT}(\d+)x[0-9a-f]+_")

# Ring header: magic, slots, slot_bytes, total puts, skipped (overwritten while busy), oversize (picture too big)
_HEADER = np.dtype([("magic", "<i8"), ("slots", "<i8"), ("slot_bytes", "<i8"), ("puts", "<i8"),
                    ("skipped", "<i8"), ("oversize", "<i8")])
# Per slot: generation (0 = being written), busy flag, shape, frame sequence, capture time
_SLOT = np.dtype([("gen", "<i8"), ("busy", "<i8"), ("h", "<i8"), ("w", "<i8"), ("c", "<i8"), ("seq", "<i8"),
                  ("at", "<f8")])
_MAGIC = 0x47575632  # "GWV2"
_ALIGN = 64


def engine_prefix(pid: int | None = None) -> str:
    """A fresh per-engine name prefix; it embeds the creating pid so leftovers of a dead engine can be found."""
    return f"{PREFIX_ROOT}{pid or os.getpid()}x{secrets.token_hex(3)}_"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(shm_dir: Path = SHM_DIR) -> list[str]:
    """Unlink ring segments whose creating engine process is gone; returns the names removed."""
    removed = []
    try:
        names = os.listdir(shm_dir)
    except OSError:
        return removed
    for name in names:
        m = _PREFIX_RE.match(name)
        if m and not _pid_alive(int(m.group(1))):
            try:
                os.unlink(shm_dir / name)
                removed.append(name)
            except OSError:
                pass
    return removed


def segments(prefix: str, shm_dir: Path = SHM_DIR) -> list[str]:
    """Names of the live segments with this prefix (tests and the engine's own cleanup)."""
    try:
        return sorted(n for n in os.listdir(shm_dir) if n.startswith(prefix))
    except OSError:
        return []


@dataclass(frozen=True, slots=True)
class SlotRef:
    """What a message carries instead of the picture: where it is and which write of that slot it was."""

    ring: str
    slot: int
    gen: int


class Ring:
    """A fixed number of picture slots in one shared-memory segment (see the module doc)."""

    def __init__(self, name: str, slots: int = 0, slot_bytes: int = 0, create: bool = False):
        self.name = name
        self.owner = create
        if create:
            if slots < 1 or slot_bytes < 1:
                raise ValueError("a ring needs at least one slot of at least one byte")
            size = self._offset(slots) + slots * _aligned(slot_bytes)
            self._shm = shared_memory.SharedMemory(name=name, create=True, size=size)
        else:
            self._shm = shared_memory.SharedMemory(name=name)
        buf = self._shm.buf
        self._header = np.ndarray((1,), _HEADER, buf, 0)
        if create:
            self._header[0] = (_MAGIC, slots, slot_bytes, 0, 0, 0)
        elif int(self._header[0]["magic"]) != _MAGIC:
            self._release_views()
            self._shm.close()
            raise ValueError(f"shared memory {name} is not a GridWatch ring")
        self.slots = int(self._header[0]["slots"])
        self.slot_bytes = int(self._header[0]["slot_bytes"])
        self._meta = np.ndarray((self.slots,), _SLOT, buf, _HEADER.itemsize)
        if create:
            self._meta[:] = 0
        base = self._offset(self.slots)
        stride = _aligned(self.slot_bytes)
        self._data = [np.ndarray((self.slot_bytes,), np.uint8, buf, base + i * stride) for i in range(self.slots)]
        self._lock = threading.Lock()  # writer side: put/release may come from different threads of the owner
        self._order: deque[int] = deque()  # writer side: busy slots, oldest first
        self._next = 0

    @staticmethod
    def _offset(slots: int) -> int:
        return _aligned(_HEADER.itemsize + slots * _SLOT.itemsize)

    # -- counters ------------------------------------------------------------------------------------------------
    @property
    def puts(self) -> int:
        return int(self._header[0]["puts"])

    @property
    def skipped(self) -> int:
        return int(self._header[0]["skipped"])

    @property
    def oversize(self) -> int:
        return int(self._header[0]["oversize"])

    @property
    def busy(self) -> int:
        return int(self._meta["busy"].sum())

    # -- writer ----------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """A new writer takes the ring over (its previous owner process died): nothing is in flight any more."""
        with self._lock:
            self._meta["busy"] = 0
            self._order.clear()

    def put(self, image: np.ndarray, seq: int = 0, at: float = 0.0, hold: bool = False) -> tuple[SlotRef | None, SlotRef | None]:
        """Copy ``image`` into a slot; returns (where it went, the busy slot overwritten to make room or None).

        ``hold``: queue-style, the slot stays busy until ``release``. A picture larger than a slot is refused
        (returns None, counted in ``oversize``) rather than truncated.
        """
        if image.nbytes > self.slot_bytes:
            self._header["oversize"][0] += 1
            return None, None
        with self._lock:
            dropped = None
            slot = self._free_slot()
            if slot is None:  # every slot busy: the oldest request gives way and is counted as skipped
                slot = self._order.popleft()
                dropped = SlotRef(self.name, slot, int(self._meta["gen"][slot]))
                self._header["skipped"][0] += 1
            meta = self._meta
            gen = int(self._header[0]["puts"]) + 1
            meta["gen"][slot] = 0
            h, w = image.shape[:2]
            c = image.shape[2] if image.ndim == 3 else 1
            self._data[slot][: image.nbytes] = np.ascontiguousarray(image).reshape(-1).view(np.uint8)
            for key, value in (("h", h), ("w", w), ("c", c), ("seq", seq), ("at", at), ("busy", 1 if hold else 0)):
                meta[key][slot] = value
            meta["gen"][slot] = gen
            self._header["puts"][0] = gen
            if hold:
                self._order.append(slot)
            return SlotRef(self.name, slot, gen), dropped

    def _free_slot(self) -> int | None:
        for k in range(self.slots):
            i = (self._next + k) % self.slots
            if not self._meta["busy"][i]:
                self._next = (i + 1) % self.slots
                return i
        return None

    def release(self, ref: SlotRef) -> None:
        """The reader is done with this write of the slot (a newer write of it is left alone)."""
        with self._lock:
            if int(self._meta["gen"][ref.slot]) == ref.gen and self._meta["busy"][ref.slot]:
                self._meta["busy"][ref.slot] = 0
                try:
                    self._order.remove(ref.slot)
                except ValueError:
                    pass

    # -- readers -----------------------------------------------------------------------------------------------------
    def read(self, ref: SlotRef) -> tuple[np.ndarray, int, float] | None:
        """A private copy of that write of the slot, with its seq and capture time; None if it was rewritten."""
        meta = self._meta[ref.slot].copy()
        if int(meta["gen"]) != ref.gen:
            return None
        h, w, c, seq, at = int(meta["h"]), int(meta["w"]), int(meta["c"]), int(meta["seq"]), float(meta["at"])
        n = h * w * c
        image = self._data[ref.slot][:n].copy()
        if int(self._meta["gen"][ref.slot]) != ref.gen:
            return None
        return (image.reshape(h, w, c) if c > 1 else image.reshape(h, w)), seq, at

    def newest(self) -> SlotRef | None:
        """The most recently completed write (latest-style rings)."""
        gens = self._meta["gen"]
        slot = int(np.argmax(gens))
        gen = int(gens[slot])
        return SlotRef(self.name, slot, gen) if gen > 0 else None

    def latest(self) -> tuple[np.ndarray, int, float] | None:
        """A copy of the newest complete picture, or None before the first one."""
        for _ in range(3):  # the writer may lap us between choosing the slot and copying it
            ref = self.newest()
            if ref is None:
                return None
            got = self.read(ref)
            if got is not None:
                return got
        return None

    # -- lifetime ------------------------------------------------------------------------------------------------------
    def _release_views(self) -> None:
        self._header = self._meta = None  # type: ignore[assignment]
        self._data = []

    def close(self, unlink: bool | None = None) -> None:
        """Drop this process's mapping; the creator (or ``unlink=True``) also removes the segment."""
        self._release_views()
        try:
            self._shm.close()
        except BufferError:  # a view still exported somewhere; the mapping goes with the process
            pass
        if self.owner if unlink is None else unlink:
            try:
                self._shm.unlink()
            except FileNotFoundError:
                pass


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


class RingCache:
    """A reader's attached rings by name (attach once, keep the mapping); rings that vanished read as None."""

    def __init__(self) -> None:
        self._rings: dict[str, Ring] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Ring | None:
        with self._lock:
            ring = self._rings.get(name)
            if ring is None:
                try:
                    ring = self._rings[name] = Ring(name)
                except (FileNotFoundError, ValueError):
                    return None
            return ring

    def read(self, ref: SlotRef) -> tuple[np.ndarray, int, float] | None:
        ring = self.get(ref.ring)
        return ring.read(ref) if ring is not None else None

    def forget(self, name: str) -> None:
        with self._lock:
            ring = self._rings.pop(name, None)
        if ring is not None:
            ring.close(unlink=False)

    def close(self) -> None:
        with self._lock:
            rings, self._rings = list(self._rings.values()), {}
        for ring in rings:
            ring.close(unlink=False)
