"""Geocoding against the district's own address registry (``config/places.yaml`` + registered devices).

A hotline caller says "文一路三号楼下" or "清河北社区3幢"; the dispatcher needs a point. Addresses are
normalised (province/district prefixes dropped, full-width made half-width, Chinese numerals before a
building/unit word made digits with cn2an), matched exactly, then by the longest known name contained in
the text, then fuzzily (rapidfuzz). No match: the form falls back to a manual pick on the map.
Coordinates come back in WGS-84. Measured on ``tests/channels/data/addresses.jsonl``: docs/CHANNELS.md.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import cn2an
import yaml
from rapidfuzz import fuzz, process

from ingest.geo import GeoPoint

# A number in Chinese (also 廿, 幺 and the financial 壹贰叁…) right before a building or unit word: 三号楼 →
# 3号楼, 十二单元 → 12单元. Only there: 文一路 is a road's name, not road number one (cn2an.transform would
# make it 文1路, so the spans are found here and only their conversion is cn2an's).
_CN_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千幺廿壹贰叁肆伍陆柒捌玖拾佰仟]+(?=[号幢栋楼单元室弄巷])")
FUZZY_CUTOFF = 60.0   # rapidfuzz ratio (0–100) below which a name is not a candidate at all


def _arabic(m: re.Match) -> str:
    try:
        return str(cn2an.cn2an(m.group(0), "smart"))
    except ValueError:   # not a well-formed number (e.g. 十十): leave the words as they were
        return m.group(0)


def _cn_number(text: str) -> str:
    """一 → 1, 十五 → 15, 二十二 → 22, 一百零三 → 103, 拾伍 → 15 (numbers in street addresses)."""
    return _CN_NUMBER.sub(_arabic, text)


def normalize_address(text: str, strip: Iterable[str] = ()) -> str:
    s = unicodedata.normalize("NFKC", text or "")
    s = re.sub(r"[\s,，。.、()（）\-—]", "", s)
    for p in strip:
        s = s.replace(p, "")
    return _cn_number(s)


@dataclass(frozen=True)
class Place:
    name: str
    point: GeoPoint
    aliases: tuple[str, ...] = ()
    source: str = "places"


@dataclass(frozen=True)
class Match:
    place: Place
    score: float
    how: str

    def to_dict(self) -> dict[str, Any]:
        p = self.place.point
        return {"name": self.place.name, "lon": round(p.lon, 7), "lat": round(p.lat, 7), "crs": "WGS84",
                "score": round(self.score, 3), "how": self.how, "source": self.place.source}


class Gazetteer:
    """Known places of the district, searchable by free text."""

    def __init__(self, places: Iterable[Place], strip_prefixes: Iterable[str] = (), district: str = ""):
        self.strip = tuple(strip_prefixes)
        self.district = district
        self.places = list(places)
        self._names: dict[str, Place] = {}
        for p in self.places:
            for n in (p.name, *p.aliases):
                key = normalize_address(n, self.strip)
                if key:
                    self._names.setdefault(key, p)

    @classmethod
    def load(cls, path: Path | None, devices: Iterable[Any] = ()) -> "Gazetteer":
        """From the places file (may be absent) plus every device's address and household."""
        data: dict[str, Any] = {}
        if path is not None and Path(path).exists():
            try:
                data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"{path}: not valid YAML: {exc}") from None
        places = []
        for i, row in enumerate(data.get("places", [])):
            try:
                pt = GeoPoint(lon=float(row["lon"]), lat=float(row["lat"]), crs=row.get("crs", "WGS84")).wgs84()
                places.append(Place(str(row["name"]), pt, tuple(str(a) for a in row.get("aliases", []))))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"{path}: places[{i}]: needs name, lon, lat ({exc})") from None
        for d in devices:
            names = tuple(n for n in (getattr(d, "household", None), getattr(d, "address", None)) if n)
            if names:
                places.append(Place(names[-1], d.location.wgs84(), names[:-1], source=f"device:{d.id}"))
        return cls(places, data.get("strip_prefixes", []), str(data.get("district", "")))

    def search(self, text: str, limit: int = 5) -> list[Match]:
        """Best candidates for an address, best first (empty when nothing is close enough)."""
        q = normalize_address(text, self.strip)
        if not q:
            return []
        if q in self._names:
            return [Match(self._names[q], 1.0, "exact")]
        found: dict[str, Match] = {}
        for key, place in self._names.items():
            if key in q and len(key) >= 3:
                score = 0.7 + 0.3 * len(key) / len(q)
                if place.name not in found or found[place.name].score < score:
                    found[place.name] = Match(place, min(score, 0.99), "contains")
        if not found:
            for key, ratio, _ in process.extract(q, list(self._names), scorer=fuzz.ratio, limit=limit,
                                                 score_cutoff=FUZZY_CUTOFF):
                place = self._names[key]
                score = ratio / 100 * 0.9
                if place.name not in found or found[place.name].score < score:
                    found[place.name] = Match(place, score, "fuzzy")
        return sorted(found.values(), key=lambda m: -m.score)[:limit]

    def geocode(self, text: str, min_score: float = 0.75) -> Match | None:
        """The one confident match, or None (then the dispatcher picks on the map)."""
        hits = self.search(text, limit=2)
        if not hits or hits[0].score < min_score:
            return None
        if len(hits) > 1 and hits[1].score >= hits[0].score - 0.02 and hits[1].place.point != hits[0].place.point:
            return None
        return hits[0]
