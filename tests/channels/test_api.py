"""The reports API against real Redis, a real SQLite store and a running intake + notifier."""
from __future__ import annotations

import logging
import re

import pytest

from alerts.streams import publish_anomaly
from ingest.anomaly import Anomaly
from ingest.geo import GeoPoint, wgs84_to_gcj02
from tests.channels.conftest import jpeg_bytes, outbox, resident_login, staff_token, wait_for

API = "/api/v1"
PHONE = "13812345678"


def _report(client, headers, text, lon, lat, crs="WGS84", photos=(), **extra):
    files = [("photos", (name, data, "image/jpeg")) for name, data in photos]
    data = {"text": text, "lon": str(lon), "lat": str(lat), "crs": crs, **extra}
    return client.post(f"{API}/reports/resident", data=data, files=files or None, headers=headers)


@pytest.mark.timeout(60)
def test_otp_login_and_refusals(client, env):
    assert client.post(f"{API}/reports/public/otp", json={"phone": "12345"}).status_code == 422
    r = client.post(f"{API}/reports/public/otp", json={"phone": PHONE})
    assert r.status_code == 200 and r.json()["phone"] == "138****5678"
    again = client.post(f"{API}/reports/public/otp", json={"phone": PHONE})
    assert again.status_code == 429 and "Retry-After" in again.headers
    bad = client.post(f"{API}/reports/public/login", json={"phone": PHONE, "code": "000000x"})
    assert bad.status_code == 401
    assert client.get(f"{API}/reports/mine").status_code == 401
    # A staff token is not a resident token.
    staff = staff_token(client, "dispatcher", "dispatcher123")
    assert client.get(f"{API}/reports/mine", headers=staff).status_code == 401


@pytest.mark.timeout(90)
def test_resident_report_routed_with_photo_and_notified(client, env, caplog):
    caplog.set_level(logging.INFO)
    headers = resident_login(client, env, PHONE)
    # Picked on an AMap-style map: GCJ-02, converted on the way in. 清河北社区第2网格 spans lon 120.11–120.12, lat 30.2725–30.28.
    glon, glat = wgs84_to_gcj02(120.1150, 30.2760)
    r = _report(client, headers, "小区门口垃圾堆了好几天没人清运，臭得不行", glon, glat, crs="GCJ02",
                photos=[("trash.jpg", jpeg_bytes())])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["grid_code"] == "330199001001002" and body["status"] == "dispatched"
    assert body["category"] == "0102" and body["suggestion"]["confidence"] > 0
    assert abs(body["location"]["lon"] - 120.1150) < 1e-6 and abs(body["location"]["lat"] - 30.2760) < 1e-6
    case = env.cases.get_ticket(body["ticket_id"])
    assert case["source"]["kind"] == "report" and case["kind"] == "resident_report"
    assert [e["kind"] for e in case["evidence"]] == ["photo"]
    assert (env.evidence_dir / case["evidence"][0]["path"]).read_bytes()[:2] == b"\xff\xd8"
    assert PHONE not in str(case)   # the ticket carries no personal data
    msgs = wait_for(lambda: [m["text"] for m in outbox(env, PHONE) if m["purpose"] in ("accepted", "dispatched")]
                    if len([m for m in outbox(env, PHONE) if m["purpose"] in ("accepted", "dispatched")]) >= 2 else None,
                    what="accepted + dispatched sms")
    assert any(body["case_number"] in m and "受理" in m for m in msgs)
    assert any("清河北社区第2网格" in m for m in msgs)
    mine = client.get(f"{API}/reports/mine", headers=headers).json()
    assert mine[0]["case_number"] == body["case_number"] and mine[0]["status_label"] == "已派遣"
    info = client.post(f"{API}/reports/mine/{body['report_id']}/info", data={"text": "补充：垃圾堆旁边还有碎玻璃"},
                       files=[("photos", ("more.jpg", jpeg_bytes(200, 200), "image/jpeg"))], headers=headers)
    assert info.status_code == 200, info.text
    assert info.json()["timeline"][-1]["label"] == "补充信息"
    # No full phone number in any log line.
    assert PHONE not in caplog.text


@pytest.mark.timeout(90)
def test_bad_input_is_refused_clearly_and_nothing_valid_is_lost(client, env):
    headers = resident_login(client, env, "13900001111")
    ok = (120.1150, 30.2760)
    r = _report(client, headers, "   ", *ok)
    assert r.status_code == 422 and "不能为空" in r.json()["detail"]
    r = _report(client, headers, "你们这些傻逼怎么还不来修", *ok)
    assert r.status_code == 422 and "不文明" in r.json()["detail"]
    r = _report(client, headers, "路灯不亮了好几天", 121.5, 31.2)
    assert r.status_code == 422 and "不在本辖区" in r.json()["detail"]
    r = _report(client, headers, "路灯不亮了好几天", *ok, photos=[("doc.jpg", b"%PDF-1.4 not an image at all")])
    assert r.status_code == 422 and "第1张照片" in r.json()["detail"] and "不是有效的图片" in r.json()["detail"]
    big = jpeg_bytes(2000, 2000)
    import numpy as np
    from PIL import Image
    import io
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    r = _report(client, headers, "路灯不亮了好几天", *ok, photos=[("ok.jpg", big), ("huge.png", buf.getvalue())])
    assert r.status_code == 413 and "第2张照片" in r.json()["detail"] and "过大" in r.json()["detail"]
    # None of the refusals used up the flood quota (4 an hour in this test) …
    for i in range(4):
        r = _report(client, headers, f"第{i + 1}次反映：北门路灯不亮了", 120.1150 + i * 0.0008, 30.2760)
        assert r.status_code == 200, r.text
    # … and the fifth is refused with a clear message and Retry-After.
    r = _report(client, headers, "再反映一次路灯不亮", *ok)
    assert r.status_code == 429 and "最多提交" in r.json()["detail"] and int(r.headers["Retry-After"]) > 0
    assert len(client.get(f"{API}/reports/mine", headers=headers).json()) == 4


@pytest.mark.timeout(120)
def test_camera_resident_and_hotline_about_one_fire_are_one_case(client, env):
    # The camera cam-garages (120.125, 30.276) sees smoke; its anomaly goes through the real stream + intake.
    cam = Anomaly(kind="fire_smoke", source="camera", source_id="cam-garages", location=GeoPoint(lon=120.125, lat=30.276),
                  category="0301", title="火情烟雾 · cam-garages")
    publish_anomaly(env.redis, env.keys, cam)
    cam_ticket = wait_for(lambda: env.cases.list_tickets(category="0301").items, what="camera ticket")[0]
    headers = resident_login(client, env, "13700002222")
    r = _report(client, headers, "车库排屋那边着火了，冒出很多黑烟！", 120.1253, 30.2758)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["category"] == "0301" and res["handover"] == "119"
    assert res["merged"] and res["case_number"] == cam_ticket["number"]
    disp = staff_token(client, "dispatcher", "dispatcher123")
    h = client.post(f"{API}/reports/hotline", headers=disp, data={
        "text": "来电称明月北车库有火情，烟很大", "caller": "王建国", "phone": "13600003333", "line": "119",
        "address": "明月北社区车库排屋", "category": "0301", "urgency": "critical"})
    assert h.status_code == 200, h.text
    assert h.json()["case_number"] == cam_ticket["number"] and h.json()["handover_label"] == "119 消防"
    t = env.cases.get_ticket(cam_ticket["id"])
    assert {o["source"]["kind"] for o in t["occurrences"]} == {"camera", "report"} and len(t["occurrences"]) == 3
    assert t["police"] is True
    # Every reporter hears about the one case.
    for phone in ("13700002222", "13600003333"):
        wait_for(lambda: any(cam_ticket["number"] in m["text"] for m in outbox(env, phone)), what=f"sms to {phone}")
    listed = client.get(f"{API}/reports", params={"ticket_id": cam_ticket["id"]}, headers=disp).json()
    assert listed["total"] == 2 and {i["phone"] for i in listed["items"]} == {"13700002222", "13600003333"}
    worker = staff_token(client, "worker_qh1", "worker123")   # 清河北1 cannot see 明月北 reports
    assert client.get(f"{API}/reports", params={"ticket_id": cam_ticket["id"]}, headers=worker).json()["total"] == 0
    sup = staff_token(client, "supervisor", "supervisor123")
    items = client.get(f"{API}/reports", params={"ticket_id": cam_ticket["id"]}, headers=sup).json()["items"]
    assert {i["phone"] for i in items} == {"137****2222", "136****3333"} and {i["name"] for i in items} == {None, "王**"}


@pytest.mark.timeout(120)
def test_lifecycle_to_closure_survey_and_satisfaction(client, env):
    from alerts.channels.satisfaction import satisfaction

    headers = resident_login(client, env, "13511112222")
    r = _report(client, headers, "文一路北口的井盖不见了，晚上很危险", 120.1052, 30.2765)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["grid_code"] == "330199001001001" and rep["category"] == "0503"
    worker = staff_token(client, "worker_qh1", "worker123")
    for action in ("sign", "start"):
        assert client.post(f"{API}/tickets/{rep['ticket_id']}/actions/{action}", json={}, headers=worker).status_code == 200
    fb = client.post(f"{API}/tickets/{rep['ticket_id']}/actions/feedback", json={"note": "已加装临时井盖并设置警示"}, headers=worker)
    assert fb.status_code == 200, fb.text
    disp = staff_token(client, "dispatcher", "dispatcher123")
    for action in ("verify", "close"):
        x = client.post(f"{API}/tickets/{rep['ticket_id']}/actions/{action}", json={}, headers=disp)
        assert x.status_code == 200, x.text
    sms = wait_for(lambda: [m["text"] for m in outbox(env, "13511112222") if m["purpose"] == "closed"], what="closed sms")[0]
    token = re.search(r"#survey=([\w-]+)", sms).group(1)
    assert client.get(f"{API}/reports/survey/{token}").json()["case_number"] == rep["case_number"]
    assert client.post(f"{API}/reports/survey/{token}", json={"score": 9}).status_code == 422
    ans = client.post(f"{API}/reports/survey/{token}", json={"score": 5, "comment": "处理很及时", "resolved": True})
    assert ans.status_code == 200 and ans.json()["satisfied"]
    assert client.post(f"{API}/reports/survey/{token}", json={"score": 1}).status_code == 409
    assert env.cases.get_ticket(rep["ticket_id"])["status"] == "rated"
    detail = client.get(f"{API}/reports/mine/{rep['report_id']}", headers=headers).json()
    assert detail["rating"] == 5 and [s["label"] for s in detail["timeline"]][-3:] == ["已核查", "已办结", "已评价"]
    assert "已加装临时井盖" in " ".join(s["note"] for s in detail["timeline"])
    sat = satisfaction(env.store, group_by="grid")
    assert sat["groups"]["330199001001001"]["satisfaction_rate"] == 1.0
    assert client.get(f"{API}/reports/satisfaction", headers=disp).json()["total"]["answered"] == 1
    assert client.get(f"{API}/reports/satisfaction", headers=worker).status_code == 403


@pytest.mark.timeout(60)
def test_patrol_report_is_self_signed_in_own_grid(client, env):
    worker = staff_token(client, "worker_qh1", "worker123")
    r = client.post(f"{API}/reports/patrol", headers=worker, files=[("photos", ("p.jpg", jpeg_bytes(), "image/jpeg"))],
                    data={"text": "巡查发现人行道地砖松动多块", "lon": "120.1030", "lat": "30.2770"})
    assert r.status_code == 200, r.text
    assert r.json()["grid_code"] == "330199001001001" and r.json()["status"] == "signed"
    t = env.cases.get_ticket(r.json()["ticket_id"])
    assert t["assignee"] == "worker_qh1" and t["kind"] == "patrol_report"
    resident = resident_login(client, env, "13822223333")
    assert client.post(f"{API}/reports/patrol", headers=resident, data={"text": "x" * 10, "lon": "1", "lat": "1"}).status_code == 401
    disp = staff_token(client, "dispatcher", "dispatcher123")
    assert client.post(f"{API}/reports/patrol", headers=disp, data={"text": "巡查发现问题", "lon": "120.1", "lat": "30.27"}).status_code == 403


@pytest.mark.timeout(90)
def test_hotline_geocode_suggestion_and_learning_from_override(client, env):
    disp = staff_token(client, "dispatcher", "dispatcher123")
    g = client.get(f"{API}/reports/geocode", params={"q": "清水区文一路三号"}, headers=disp).json()
    assert g["match"]["name"] == "文一路3号"
    assert client.get(f"{API}/reports/geocode", params={"q": "火星基地"}, headers=disp).json()["match"] is None
    text = "门卫室旁边那台饮水机一直在嘀嘀响，吵得值班的人心烦"
    sug = client.post(f"{API}/reports/classify", json={"text": text}, headers=disp).json()
    assert 0 < sug["confidence"] <= 1 and sug["category"]
    wanted = "0601" if sug["category"] != "0601" else "0403"
    r = client.post(f"{API}/reports/hotline", headers=disp, data={
        "text": text, "caller": "李四", "phone": "0571-88886666", "address": "学院路8号", "category": wanted, "urgency": "low"})
    assert r.status_code == 422 and "回访电话" in r.json()["detail"]   # a landline cannot get SMS: ask for a mobile
    r = client.post(f"{API}/reports/hotline", headers=disp, data={
        "text": text, "caller": "李四", "phone": "13988887777", "address": "学院路8号", "category": wanted, "urgency": "low"})
    assert r.status_code == 200, r.text
    assert r.json()["grid_code"] == "330199002002004" and r.json()["suggestion"]["category"] == sug["category"]
    again = client.post(f"{API}/reports/classify", json={"text": text}, headers=disp).json()
    assert again["category"] == wanted   # the override was stored and the classifier retrained on it
    unknown = client.post(f"{API}/reports/hotline", headers=disp, data={"text": "某处出现问题需要处理", "address": "火星基地1号"})
    assert unknown.status_code == 422 and "地图上点选" in unknown.json()["detail"]
    manual = client.post(f"{API}/reports/hotline", headers=disp, data={"text": "有人在打架，还拿着棍子", "lon": "120.131", "lat": "30.259",
                                                                  "line": "110", "phone": "13988887777"})
    assert manual.status_code == 200 and manual.json()["handover"] == "110" and manual.json()["category"] == "0402"
    worker = staff_token(client, "worker_my4", "worker123")
    assert client.post(f"{API}/reports/hotline", headers=worker, data={"text": "测试测试测试", "address": "学院路8号"}).status_code == 403
