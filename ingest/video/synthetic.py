"""Generated moving scenes (``synthetic:crowd|traffic|walker|smoke|still``) so the demo runs without footage.

They are not meant to fool a detector: they give motion, the right kind of moving shapes per scene,
a clock overlay like a camera OSD, and a steady frame rate — enough to exercise decoding, pacing,
motion gating, health and the console end to end. ``still`` is a fixed picture (frozen-camera tests).
Options ride in the query: ``synthetic:traffic?w=1280&h=720&fps=25&seed=3``.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qsl

import cv2
import numpy as np

from ingest.video.errors import InvalidSourceError
from ingest.video.picture import Picture
from ingest.video.source import Source, SourceContext, StreamInfo

Scene = Callable[[int], np.ndarray]


def _background(w: int, h: int, tone: int, tile: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((h, w, 3), tone, np.uint8)
    for x in range(0, w, tile):
        cv2.line(img, (x, 0), (x, h), (tone - 18,) * 3, 1)
    for y in range(0, h, tile):
        cv2.line(img, (0, y), (w, y), (tone - 18,) * 3, 1)
    noise = rng.integers(-6, 7, size=(h, w, 1), dtype=np.int16)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _person(img: np.ndarray, x: float, y: float, scale: float, colour: tuple[int, int, int], phase: float) -> None:
    """A stick-and-blob pedestrian: head, torso, swinging legs; (x, y) is the feet position."""
    s = scale
    cx, fy = int(x), int(y)
    torso_top, torso_bottom = int(fy - 1.6 * s), int(fy - 0.8 * s)
    cv2.rectangle(img, (int(cx - 0.22 * s), torso_top), (int(cx + 0.22 * s), torso_bottom), colour, -1)
    cv2.circle(img, (cx, int(fy - 1.8 * s)), max(2, int(0.18 * s)), (60, 80, 120), -1)
    swing = np.sin(phase) * 0.25 * s
    thick = max(2, int(0.12 * s))
    cv2.line(img, (cx, torso_bottom), (int(cx + swing), fy), (40, 40, 40), thick)
    cv2.line(img, (cx, torso_bottom), (int(cx - swing), fy), (40, 40, 40), thick)


class _Crowd:
    def __init__(self, w: int, h: int, rng: np.random.Generator, count: int = 24):
        self.w, self.h, self.rng = w, h, rng
        self.bg = _background(w, h, 190, max(16, w // 16), rng)
        self.pos = rng.uniform([0, h * 0.25], [w, h], size=(count, 2))
        self.vel = rng.normal(0, 1.5, size=(count, 2)) * (w / 640)
        self.col = rng.integers(30, 220, size=(count, 3))
        # a standing group (the loitering case of the real plaza clip)
        self.pos[:4] = [[w * 0.3 + i * w * 0.03, h * 0.55] for i in range(4)]
        self.vel[:4] = 0

    def __call__(self, n: int) -> np.ndarray:
        img = self.bg.copy()
        self.pos += self.vel
        for axis, limit in ((0, self.w), (1, self.h)):
            out = (self.pos[:, axis] < (0 if axis == 0 else self.h * 0.25)) | (self.pos[:, axis] > limit)
            self.vel[out, axis] *= -1
        scale = self.h / 14
        for i in np.argsort(self.pos[:, 1]):
            _person(img, *self.pos[i], scale, tuple(int(c) for c in self.col[i]), n * 0.4 + i)
        return img


class _Traffic:
    def __init__(self, w: int, h: int, rng: np.random.Generator):
        self.w, self.h, self.rng = w, h, rng
        bg = np.full((h, w, 3), (70, 110, 80), np.uint8)
        cv2.rectangle(bg, (0, int(h * 0.35)), (w, int(h * 0.85)), (80, 80, 80), -1)
        for lane in (0.5, 0.7):
            y = int(h * lane)
            for x in range(0, w, w // 12):
                cv2.line(bg, (x, y), (x + w // 30, y), (230, 230, 230), 2)
        for i in range(5):  # parked cars at the kerb (the no-parking zone of the demo)
            x = int(w * (0.1 + i * 0.17))
            cv2.rectangle(bg, (x, int(h * 0.22)), (x + w // 9, int(h * 0.33)), (40, 40, 160 + i * 15), -1)
        self.bg = bg
        self.cars = [[rng.uniform(0, w), lane, rng.uniform(2, 6) * (1 if lane < 0.6 else -1) * w / 640,
                      tuple(int(c) for c in rng.integers(30, 250, 3))]
                     for lane in (0.42, 0.6, 0.78) for _ in range(2)]

    def __call__(self, n: int) -> np.ndarray:
        img = self.bg.copy()
        cw, ch = self.w // 8, self.h // 10
        for car in self.cars:
            car[0] = (car[0] + car[2]) % (self.w + cw) if car[2] > 0 else (car[0] + car[2]) % (self.w + cw)
            x, y = int(car[0]) - cw // 2, int(self.h * car[1]) - ch // 2
            cv2.rectangle(img, (x, y), (x + cw, y + ch), car[3], -1)
            cv2.rectangle(img, (x + cw // 5, y + 3), (x + cw * 4 // 5, y + ch // 3), (200, 220, 230), -1)
            for wx in (x + cw // 5, x + cw * 4 // 5):
                cv2.circle(img, (wx, y + ch), max(3, ch // 5), (20, 20, 20), -1)
        return img


class _Walker:
    def __init__(self, w: int, h: int, rng: np.random.Generator):
        self.w, self.h = w, h
        self.bg = _background(w, h, 170, max(20, w // 10), rng)
        cv2.rectangle(self.bg, (int(w * 0.05), int(h * 0.2)), (int(w * 0.15), int(h * 0.75)), (90, 60, 40), -1)

    def __call__(self, n: int) -> np.ndarray:
        img = self.bg.copy()
        period = 200
        t = n % period
        x = self.w * (0.1 + 0.8 * (t / (period / 2) if t < period / 2 else 2 - t / (period / 2)))
        _person(img, x, self.h * 0.85, self.h / 5, (150, 90, 40), n * 0.5)
        return img


class _Smoke:
    def __init__(self, w: int, h: int, rng: np.random.Generator):
        self.w, self.h, self.rng = w, h, rng
        bg = np.full((h, w, 3), (200, 170, 140), np.uint8)  # sky
        cv2.rectangle(bg, (0, int(h * 0.55)), (w, h), (90, 100, 110), -1)
        for i in range(6):
            x = int(w * (0.05 + i * 0.15))
            cv2.rectangle(bg, (x, int(h * 0.4)), (x + w // 8, int(h * 0.8)), (120, 130, 150), -1)
            cv2.rectangle(bg, (x + w // 40, int(h * 0.55)), (x + w // 10, int(h * 0.8)), (70, 70, 80), -1)
        self.bg = bg
        self.puffs: list[list[float]] = []

    def __call__(self, n: int) -> np.ndarray:
        img = self.bg.copy()
        src = (self.w * 0.42, self.h * 0.55)
        if n % 3 == 0:
            self.puffs.append([src[0] + self.rng.normal(0, 5), src[1], 8.0, 0.0])
        overlay = img.copy()
        for p in self.puffs:
            p[0] += self.rng.normal(0.8, 0.6)
            p[1] -= 1.5 * self.h / 360
            p[2] += 0.6 * self.w / 640
            p[3] += 1
            shade = int(min(90, 40 + p[3] * 0.3))
            cv2.circle(overlay, (int(p[0]), int(p[1])), int(p[2]), (shade,) * 3, -1)
        self.puffs = [p for p in self.puffs if p[1] + p[2] > 0][-80:]
        img = cv2.addWeighted(overlay, 0.75, img, 0.25, 0)
        flicker = self.rng.uniform(0.7, 1.0)
        fx, fy = int(src[0]), int(src[1])
        pts = np.array([[fx - 25, fy + 20], [fx + 25, fy + 20], [fx + int(10 * flicker), fy - int(45 * flicker)]])
        cv2.fillPoly(img, [pts], (0, int(140 * flicker), 255))
        return img


class _Still:
    def __init__(self, w: int, h: int, rng: np.random.Generator):
        self.img = _background(w, h, 150, max(20, w // 12), rng)
        cv2.putText(self.img, "STILL", (w // 3, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (40, 40, 40), 3)

    def __call__(self, n: int) -> np.ndarray:
        return self.img.copy()


SCENES: dict[str, type] = {"crowd": _Crowd, "traffic": _Traffic, "walker": _Walker, "smoke": _Smoke, "still": _Still}


class SyntheticSource(Source):
    """``synthetic:SCENE`` — a generated scene paced at its frame rate (default 640x360 at 15 fps)."""

    kind = "synthetic"

    def __init__(self, url: str, ctx: SourceContext):
        super().__init__(url, ctx)
        rest = url.split(":", 1)[1]
        name, _, query = rest.partition("?")
        if name not in SCENES:
            raise InvalidSourceError(f"unknown synthetic scene {name!r}; known: {', '.join(sorted(SCENES))}")
        try:
            opts = {k: float(v) for k, v in parse_qsl(query)}
        except ValueError:
            raise InvalidSourceError("synthetic options must be numbers (w, h, fps, seed)") from None
        self.scene_name = name
        self.width = int(min(3840, max(64, opts.get("w", 640))))
        self.height = int(min(2160, max(64, opts.get("h", 360))))
        self.fps = float(min(60.0, max(0.5, opts.get("fps", 15.0))))
        self.seed = int(opts.get("seed", 7))
        self._scene: Scene | None = None
        self._n = 0

    def open(self) -> StreamInfo:
        if self._scene is None:
            self._scene = SCENES[self.scene_name](self.width, self.height, np.random.default_rng(self.seed))
        return StreamInfo(codec="synthetic", width=self.width, height=self.height, fps=self.fps, kind="synthetic")

    def frames(self) -> Iterator[Picture]:
        assert self._scene is not None
        period = 1.0 / self.fps
        t0 = time.monotonic() - self._n * period
        while not self.ctx.stop.is_set():
            due = t0 + self._n * period
            delay = due - time.monotonic()
            if delay > 0 and self.ctx.stop.wait(delay):
                return
            if delay < -1.0:  # fell behind (machine busy): drop the backlog instead of bursting
                t0 = time.monotonic() - self._n * period
            image = self._scene(self._n)
            if self.scene_name != "still":
                stamp = time.strftime("%Y-%m-%d %H:%M:%S") + f" #{self._n}"
                cv2.putText(image, stamp, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            yield Picture(pts=self._n * period, array=image, key_frame=True)
            self._n += 1
