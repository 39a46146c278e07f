"""The report endpoints' response models (``gateway/api/report_schemas.py``) document the JSON without changing it:
they mirror the channels' answers field for field, the HTTP answer is still the channel's answer as
``jsonable_encoder`` writes it (times as ``isoformat()`` text, ``+00:00`` and all), and every report endpoint's
200 answer has a schema in the OpenAPI document."""
from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.encoders import jsonable_encoder

from alerts.channels.classifier import Suggestion
from alerts.channels.filing import FiledReport
from alerts.channels.resident import ResidentReport, ResidentReportDetail, TimelineEntry
from alerts.channels.staff_reports import Recategorized, ReportPage, StaffReport
from alerts.channels.surveys import SurveyAnswer, SurveyView
from alerts.channels.values import Location
from gateway.api import report_schemas as rs
from tests.channels.conftest import jpeg_bytes, resident_login

API = "/api/v1"

MIRRORS = [(rs.SuggestionOut, Suggestion), (rs.FiledReportOut, FiledReport), (rs.ResidentReportOut, ResidentReport),
           (rs.ResidentReportDetailOut, ResidentReportDetail), (rs.TimelineEntryOut, TimelineEntry),
           (rs.StaffReportOut, StaffReport), (rs.ReportPageOut, ReportPage), (rs.RecategorizedOut, Recategorized),
           (rs.SurveyViewOut, SurveyView), (rs.SurveyAnswerOut, SurveyAnswer), (rs.LocationOut, Location)]


@pytest.mark.parametrize(("model", "answer"), MIRRORS, ids=lambda x: x.__name__)
def test_each_model_names_its_answers_fields_in_order(model, answer) -> None:
    assert list(model.model_fields) == [f.name for f in dataclasses.fields(answer)]


@pytest.mark.timeout(60)
def test_the_json_is_the_channel_answer_as_before(client, env) -> None:
    phone = "13866667777"
    headers = resident_login(client, env, phone)
    r = client.post(f"{API}/reports/resident", headers=headers, files=[("photos", ("p.jpg", jpeg_bytes(), "image/jpeg"))],
                    data={"text": "小区门口的路灯坏了好几天，晚上很黑", "lon": "120.1150", "lat": "30.2760"})
    assert r.status_code == 200, r.text
    report_id = r.json()["report_id"]
    one = client.get(f"{API}/reports/mine/{report_id}", headers=headers)
    assert one.json() == jsonable_encoder(env.channels.resident.one(phone, report_id))
    assert one.json()["created_at"].endswith("+00:00")  # isoformat's spelling, not pydantic's "Z"
    assert client.get(f"{API}/reports/mine", headers=headers).json() == jsonable_encoder(env.channels.resident.mine(phone))


def test_every_report_endpoint_documents_its_answer(client) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    undocumented = []
    for path, ops in paths.items():
        if not path.startswith(f"{API}/reports"):
            continue
        for method, op in ops.items():
            ok = op["responses"].get("200")
            schema = (ok or {}).get("content", {}).get("application/json", {}).get("schema", {})
            if ok is not None and "$ref" not in json.dumps(schema):  # a named model, not a bare object
                undocumented.append(f"{method.upper()} {path}")
    assert undocumented == []
