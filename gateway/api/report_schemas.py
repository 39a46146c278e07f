"""Response models of the report endpoints (``gateway/api/reports.py``), so the OpenAPI schema documents them.

They mirror the channels' answers (the dataclasses of ``alerts.channels``) field for field and in the same order,
so the JSON is what the pages have always read. Times are ``IsoTime``: the text ``jsonable_encoder`` writes
(``datetime.isoformat()``, e.g. ``2026-12-01T08:30:00.123456+00:00``), kept as text because pydantic would write
UTC as ``…Z`` and the report pages and clients parse what they were given.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

IsoTime = Annotated[str, Field(description="ISO 8601 date-time as Python's isoformat writes it")]


class _Out(BaseModel):
    # a field the channels add later stays in the JSON (undocumented until it is added here; the drift test,
    # tests/channels/test_report_schemas.py, says so) rather than vanishing or turning the answer into a 500
    model_config = ConfigDict(extra="allow")


class LocationOut(_Out):
    lon: float
    lat: float
    crs: str = Field(description="always WGS84 once stored")


class CategoryOut(_Out):
    code: str
    name: str
    severity: str
    handover: str | None
    handover_label: str | None
    police: bool


class PublicConfig(_Out):
    district: str
    categories: list[CategoryOut]
    urgency: dict[str, str] = Field(description="urgency level → Chinese label")
    hotline_lines: list[str]
    max_photos: int
    photo_max_bytes: int
    min_text_chars: int
    max_text_chars: int


class PublicGridProperties(_Out):
    code: str
    name: str
    level: str
    parent: str | None
    version: str


class PublicGridFeature(_Out):
    type: str = "Feature"
    properties: PublicGridProperties
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, WGS-84")


class PublicGrids(_Out):
    type: str = "FeatureCollection"
    features: list[PublicGridFeature]


class SuggestionOut(_Out):
    """The classifier's suggestion (``alerts.channels.classifier.Suggestion``)."""

    category: str
    category_name: str
    confidence: float
    urgency: str
    urgency_label: str
    urgency_confidence: float
    handover: str | None
    alternatives: list[dict[str, Any]]
    matched: list[str]
    method: str
    top: list[dict[str, Any]] = Field(description="up to 3: code, name, confidence, reasons, critical")
    dangers: list[dict[str, Any]] = Field(description="danger signs: sign, label, words, handover")
    handovers: list[dict[str, str]] = Field(description="emergency lines, most urgent first")
    urgency_reasons: list[str]


class FiledReportOut(_Out):
    """A report just filed and the case it opened or joined (``alerts.channels.filing.FiledReport``)."""

    report_id: int
    case_number: str
    ticket_id: int
    status: str
    status_label: str
    grid_code: str
    grid_name: str
    unit_code: str
    merged: bool = Field(description="joined an open case of the same place and category")
    category: str
    category_name: str
    urgency: str
    urgency_label: str
    handover: str | None
    handover_label: str | None
    suggestion: SuggestionOut
    location: LocationOut
    address: str | None
    photos: int


class ResidentReportOut(_Out):
    """A report as its resident sees it (``alerts.channels.resident.ResidentReport``)."""

    report_id: int
    channel: str
    channel_label: str
    case_number: str | None
    status: str
    status_label: str
    category: str
    category_name: str
    urgency: str
    text: str
    address: str | None
    location: LocationOut
    grid_name: str | None
    created_at: IsoTime
    closed_at: IsoTime | None
    can_rate: bool
    rating: int | None
    photos: int


class TimelineEntryOut(_Out):
    at: IsoTime
    action: str
    label: str
    note: str


class ResidentReportDetailOut(ResidentReportOut):
    timeline: list[TimelineEntryOut]


class SurveyViewOut(_Out):
    case_number: str
    category_name: str
    closed_at: IsoTime | None
    answered: bool
    score: int | None
    expired: bool


class SurveyAnswerOut(_Out):
    ok: bool
    score: int
    satisfied: bool = Field(description="4 or 5: counted as satisfied in 满意率")


class PlaceMatchOut(_Out):
    name: str
    lon: float
    lat: float
    crs: str
    score: float
    how: str
    source: str


class GeocodeOut(_Out):
    query: str
    match: PlaceMatchOut | None
    candidates: list[PlaceMatchOut]


class SatisfactionMetrics(_Out):
    surveys: int
    answered: int
    satisfied: int
    satisfaction_rate: float | None
    response_rate: float | None
    resolved_rate: float | None
    mean_score: float | None


class SatisfactionOut(_Out):
    group_by: str
    total: SatisfactionMetrics
    groups: dict[str, SatisfactionMetrics] = Field(description="grid / unit / department / category → its figures")


class RetrainOut(_Out):
    examples: int = Field(description="training examples the classifier was fitted on")


class StaffReportOut(_Out):
    """A report as staff see it, masked per role (``alerts.channels.staff_reports.StaffReport``)."""

    id: int
    channel: str
    line: str | None
    case_number: str | None
    ticket_id: int | None
    phone: str | None
    name: str | None
    staff: str | None
    text: str
    address: str | None
    location: LocationOut
    crs_in: str
    category: str
    category_name: str
    urgency: str
    suggested_category: str | None
    suggested_urgency: str | None
    confidence: float | None
    handover: str | None
    photos: list[dict[str, Any]]
    grid_code: str | None
    created_at: IsoTime
    error: str | None


class ReportPageOut(_Out):
    total: int
    offset: int
    limit: int
    items: list[StaffReportOut]


class RecategorizedOut(_Out):
    report_id: int
    category: str
    urgency: str
    correction_stored: bool
