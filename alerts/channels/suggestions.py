"""Category and urgency suggestions for a report, and the dispatchers' corrections they learn from.

Every channel asks the same ``Suggester``; a dispatcher's choice that differs from the suggestion is
stored in ``channel_corrections`` and the classifier refits on seed + corrections once
``retrain_every`` new ones have come in (one path for every correction, also the one
``alerts.channels.evaluate`` replays for its learning curve).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select

from alerts.channels.classifier import Example, ReportClassifier, Suggestion
from alerts.channels.models import Correction
from alerts.store import Store


class Suggester:
    """The report classifier of this process with its corrections; thread-safe as the classifier is.

    The first fit happens at the first suggestion or correction (or at ``warm_up``), not when the channels are built.
    Why: every role process builds the channels, but only the API suggests; a fit on the packaged seed costs ~9 s of
    CPU, which five role processes paid at every start of ``gridwatch run``."""

    def __init__(self, store: Store, classifier: ReportClassifier, seed: list[Example], *, retrain_every: int,
                 clock: Callable[[], datetime]):
        self.store, self.classifier, self.seed = store, classifier, list(seed)
        self.retrain_every, self.clock = retrain_every, clock
        self._corrections_trained = 0
        self._fit_lock = threading.Lock()

    @property
    def _fitted(self) -> bool:
        return self.classifier.trained_on > 0   # read again under the lock: another thread may have fitted meanwhile

    def warm_up(self) -> threading.Thread:
        """Fit in the background now, so that the first suggestion a dispatcher asks for does not wait for it."""
        thread = threading.Thread(target=self.maybe_retrain, name="classifier-warm-up", daemon=True)
        thread.start()
        return thread

    def classify(self, text: str) -> Suggestion:
        """Suggest category + urgency (retraining first if dispatchers corrected something since the last fit)."""
        self.maybe_retrain()
        return self.classifier.suggest(text)

    def _count_corrections(self) -> int:
        with self.store.read() as s:
            return int(s.scalar(select(func.count()).select_from(Correction)) or 0)

    def maybe_retrain(self, force: bool = False) -> bool:
        """Fit when never fitted, when forced, or once ``retrain_every`` corrections came in since the last fit. Only
        the first fit is waited for: while another thread refits, the current model answers."""
        if not self._fit_lock.acquire(blocking=force or not self._fitted):
            return False
        try:
            n = self._count_corrections()
            if self._fitted and not force and n - self._corrections_trained < self.retrain_every:
                return False
            self._retrain()
            return True
        finally:
            self._fit_lock.release()

    def retrain(self) -> int:
        """Fit the classifier on the seed plus every stored correction (latest per text wins); returns examples used."""
        with self._fit_lock:
            return self._retrain()

    def _retrain(self) -> int:
        with self.store.read() as s:
            rows = s.scalars(select(Correction).order_by(Correction.id)).all()
        used = self.classifier.learn(self.seed, [Example(r.text, r.category, r.urgency) for r in rows])
        self._corrections_trained = len(rows)
        return used

    def correct(self, text: str, suggested: tuple[str | None, str | None], category: str, urgency: str, actor: str,
                report_id: int | None = None) -> bool:
        """Record a dispatcher's choice when it differs from ``suggested`` (category, urgency); returns whether stored."""
        if suggested == (category, urgency):
            return False
        with self.store.write() as s:
            s.add(Correction(report_id=report_id, text=text, suggested_category=suggested[0], category=category,
                             suggested_urgency=suggested[1], urgency=urgency, actor=actor, at=self.clock()))
        self.maybe_retrain()
        return True
