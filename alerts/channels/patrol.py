"""采: what a grid worker or leader finds on patrol, filed from the patrol page with a point on the map.

A worker's own find in a grid they hold is signed for by them at once (自行处置, setting
``patrol_self_sign``): they are standing in front of it, so dispatching it back to them would only cost time.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable

from alerts.channels.filing import FiledReport, ReportFiling
from alerts.channels.screening import ReportError
from alerts.channels.values import Photo, ReportInput, Staff
from alerts.lifecycle import TransitionError
from alerts.service import CaseService

log = logging.getLogger("alerts.channels")


class PatrolChannel:
    def __init__(self, filing: ReportFiling, cases: CaseService, *, self_sign: bool):
        self.filing, self.cases, self.self_sign = filing, cases, self_sign

    def file(self, inp: ReportInput, photos: Iterable[Photo] = (), *, staff: Staff | None) -> FiledReport:
        """``staff`` a grid worker/leader; location by lon/lat; category optional (suggested)."""
        text = self.filing.screen_text(inp.text)
        if staff is None:
            raise ReportError("需要工作人员登录", status=401)
        after = (lambda ticket_id: self._sign_own(ticket_id, staff)) if self.self_sign else None
        return self.filing.file("patrol", text, inp, photos, phone=None, staff=staff, after=after)

    def _sign_own(self, ticket_id: int, staff: Staff) -> str | None:
        """A worker's own find in a grid they hold: signed for by them at once (自行处置)."""
        try:
            t = self.cases.get_ticket(ticket_id)
            if t["status"] != "dispatched" or not any(t["unit_code"].startswith(g) for g in staff.grids):
                return None
            out = self.cases.transition(ticket_id, "sign", staff.username, "巡查发现，自行处置", role=staff.role)
            return out["status"]
        except (TransitionError, ValueError) as exc:
            log.info("patrol self-sign of ticket %s skipped: %s", ticket_id, exc)
            return None
