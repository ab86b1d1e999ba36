"""Outbound, exactly once: one Jira issue per recommendation fingerprint, whatever crashes.

Jira has no idempotency key, so the protocol is (DESIGN.md, "Exactly-once toward Jira"):

1. record the intent (``tickets`` row, state ``creating``) and commit;
2. create the issue carrying the fingerprint label ``reclaim-fp-<fp>`` (and an entity property);
3. record its key and commit.

A ``creating`` row found later means step 2 may or may not have happened. Jira's search lags
writes, so the fingerprint label is searched only once ``grace`` seconds have passed since the
intent; found, the oldest such issue is recorded; not found, the issue is created again.
:meth:`Distributor.sweep_duplicates` closes any duplicate that still slipped through (say, a
search that lagged beyond the grace period), keeping the oldest issue of each fingerprint.
"""

from __future__ import annotations

__all__ = [
    "FINGERPRINT_LABEL_PREFIX",
    "Distributor",
    "TicketPlan",
    "add_progress_observer",
    "fingerprint_label",
]

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from reclaim.sync.ledger import AlsoRecorded, TicketLedger, TicketRow
from reclaim.tickets import (
    CreateOutcomeUnknown,
    Document,
    Issue,
    IssueDraft,
    JiraClient,
    JiraRequestError,
)

FINGERPRINT_LABEL_PREFIX = "reclaim-fp-"
# On every ticket reclaim creates, so the inbound poll can find them all with one clause.
MANAGED_LABEL = "reclaim"
PROPERTY_KEY = "reclaim"
# Keep a reconcile search's JQL well under Jira's URL and clause limits.
_SEARCH_BATCH = 50

Observer = Callable[[str, str], None]
_observers: list[Observer] = []


def add_progress_observer(observer: Observer) -> Callable[[], None]:
    """Call ``observer(point, fingerprint)`` at each point of create-and-record.

    Points: ``intent`` (intent committed), ``created`` (Jira answered; once per request, so
    once per chunk of a bulk create), ``recorded`` (key committed; for each ticket of a bulk
    chunk after the chunk's one commit), ``chunk`` (a bulk chunk's keys committed). For
    metrics, and for the tests that kill the process at each point. Returns a function that
    removes the observer.
    """
    _observers.append(observer)
    return lambda: _observers.remove(observer)


def _notify(point: str, fingerprint: str) -> None:
    for observer in list(_observers):
        observer(point, fingerprint)


def fingerprint_label(fingerprint: str) -> str:
    return FINGERPRINT_LABEL_PREFIX + fingerprint


@dataclass(frozen=True)
class TicketPlan:
    fingerprint: str
    recommendation_id: int | None
    draft: IssueDraft

    def keyed_draft(self) -> IssueDraft:
        """The draft with the fingerprint label and property that make reconciliation possible."""
        draft = self.draft
        label = fingerprint_label(self.fingerprint)
        labels = tuple(dict.fromkeys((*draft.labels, MANAGED_LABEL, label)))
        properties = {**draft.properties, PROPERTY_KEY: {"fingerprint": self.fingerprint}}
        # Built field by field: ``dataclasses.replace`` looks the fields up again for every
        # ticket of every chunk, at three times the cost.
        return IssueDraft(
            project=draft.project,
            summary=draft.summary,
            issue_type=draft.issue_type,
            description=draft.description,
            labels=labels,
            components=draft.components,
            assignee=draft.assignee,
            priority=draft.priority,
            properties=properties,
        )


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Distributor:
    def __init__(
        self,
        client: JiraClient,
        ledger: TicketLedger,
        *,
        grace: float = 30.0,
        now: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        on_recorded: AlsoRecorded | None = None,
    ) -> None:
        """``on_recorded(connection, recommendation_ids)`` runs inside every transaction that
        records tickets as created (the distribute workflow marks the recommendations
        ticketed there)."""
        self.client = client
        self.ledger = ledger
        self.grace = grace
        self.now = now
        self.sleep = sleep
        self.on_recorded = on_recorded

    # -- one at a time -------------------------------------------------------------------

    def distribute(self, plan: TicketPlan) -> str:
        """The key of the plan's ticket, created now unless it already exists."""
        row = self.ledger.get(plan.fingerprint)
        if row is not None and row.state == "created" and row.key:
            self._link([(plan, row)])
            return row.key
        if row is None:
            self.ledger.record_intents([(plan.fingerprint, plan.draft.project)], self.now())
            _notify("intent", plan.fingerprint)
        else:
            found = self.reconcile([(plan, row)])
            if plan.fingerprint in found:
                return found[plan.fingerprint]
            self.ledger.retry_intent(plan.fingerprint, self.now())
        try:
            created = self.client.create_issue(plan.keyed_draft())
        except JiraRequestError:
            self.ledger.forget_intent(plan.fingerprint)
            raise
        except CreateOutcomeUnknown:
            self.ledger.outcome_unknown([plan.fingerprint], self.now())
            raise
        _notify("created", plan.fingerprint)
        self.ledger.record_created(
            [(plan.fingerprint, plan.recommendation_id, created.key, created.id, created.url)],
            self.now(),
            also=self.on_recorded,
        )
        _notify("recorded", plan.fingerprint)
        return created.key

    def _link(self, found: Sequence[tuple[TicketPlan, TicketRow]]) -> None:
        # Tickets already created (by an attempt that died before marking its
        # recommendations): make sure each recommendation is linked to its ticket.
        self.ledger.record_created(
            [
                (
                    plan.fingerprint,
                    plan.recommendation_id,
                    row.key,
                    row.issue_id or "",
                    row.url or "",
                )
                for plan, row in found
                if row.key is not None
            ],
            self.now(),
            also=self.on_recorded,
        )

    # -- reconcile -----------------------------------------------------------------------

    def reconcile(self, pending: Sequence[tuple[TicketPlan, TicketRow]]) -> dict[str, str]:
        """Search Jira for intents whose outcome is unknown; record and return what exists.

        Waits until the newest intent is ``grace`` seconds old, so the search index has caught
        up with any create that did happen.
        """
        if not pending:
            return {}
        newest = max(row.intent_at for _, row in pending)
        wait = (newest - self.now()).total_seconds() + self.grace
        if wait > 0:
            self.sleep(wait)
        plans = {plan.fingerprint: plan for plan, _ in pending}
        oldest: dict[str, Issue] = {}
        for issue in self._search_labels(list(plans)):
            for label in issue.labels:
                fingerprint = label.removeprefix(FINGERPRINT_LABEL_PREFIX)
                if label.startswith(FINGERPRINT_LABEL_PREFIX) and fingerprint in plans:
                    known = oldest.get(fingerprint)
                    if known is None or (issue.created_ms, int(issue.id)) < (
                        known.created_ms,
                        int(known.id),
                    ):
                        oldest[fingerprint] = issue
        rows = [
            (fp, plans[fp].recommendation_id, issue.key, issue.id, "")
            for fp, issue in oldest.items()
        ]
        self.ledger.record_created(rows, self.now(), also=self.on_recorded)
        return {fp: issue.key for fp, issue in oldest.items()}

    def _search_labels(self, fingerprints: list[str]) -> Iterable[Issue]:
        for start in range(0, len(fingerprints), _SEARCH_BATCH):
            batch = fingerprints[start : start + _SEARCH_BATCH]
            labels = ", ".join(f'"{fingerprint_label(fp)}"' for fp in batch)
            yield from self.client.search_all(f"labels IN ({labels}) ORDER BY created ASC")

    # -- many at once --------------------------------------------------------------------

    def distribute_many(self, plans: Sequence[TicketPlan]) -> tuple[dict[str, str], dict[str, str]]:
        """Bulk create (50 per request) with the same protocol; returns (keys, refusals).

        Refusals map a fingerprint to Jira's reason (bad field, unknown project): those intents
        are dropped, since nothing was created, and the next run tries them again.

        A chunk costs two commits on the way that never crashed: its intents (one INSERT that
        skips fingerprints with a row already) before the request, and after it the keys, the
        links, the refusals dropped and ``on_recorded`` together. Fingerprints that already had
        a row are read and settled first: a ticket recorded is linked, an intent left behind
        is reconciled by label.
        """
        keys: dict[str, str] = {}
        refused: dict[str, str] = {}
        for start in range(0, len(plans), 50):
            chunk_keys, chunk_refused = self._distribute_chunk(plans[start : start + 50])
            keys.update(chunk_keys)
            refused.update(chunk_refused)
        return keys, refused

    def _distribute_chunk(
        self, plans: Sequence[TicketPlan]
    ) -> tuple[dict[str, str], dict[str, str]]:
        keys: dict[str, str] = {}
        refused: dict[str, str] = {}
        # Intents are stamped chunk by chunk, just before the chunk is sent: the grace period
        # of a later reconcile counts from the send, not from the start of the run.
        fresh = self.ledger.claim_intents(
            [(p.fingerprint, p.draft.project) for p in plans], self.now()
        )
        for plan in plans:
            if plan.fingerprint in fresh:
                _notify("intent", plan.fingerprint)
        todo = [plan for plan in plans if plan.fingerprint in fresh]
        others = [plan for plan in plans if plan.fingerprint not in fresh]
        if others:
            retry = self._settle_known(others, keys)
            if todo:
                # A reconcile may have waited out a grace period since the fresh intents were
                # stamped: count theirs from the send as well.
                self.ledger.restamp_intents([p.fingerprint for p in todo], self.now())
            todo = retry + todo
        if not todo:
            return keys, refused
        try:
            result = self.client.create_issues([p.keyed_draft() for p in todo])
        except CreateOutcomeUnknown:
            self.ledger.outcome_unknown([p.fingerprint for p in todo], self.now())
            raise
        except JiraRequestError:
            # Jira refused the whole request (bad credentials, no permission): nothing was
            # created, so nothing is pending, and the next run need not wait out a grace
            # period for these. (The retried ones were searched for just before.)
            self.ledger.forget_intents([p.fingerprint for p in todo])
            raise
        rows = []
        for plan, created in zip(todo, result.created, strict=True):
            if created is not None:
                rows.append(
                    (plan.fingerprint, plan.recommendation_id, created.key, created.id, created.url)
                )
                keys[plan.fingerprint] = created.key
        for failure in result.failed:
            plan = todo[failure.index]
            refused[plan.fingerprint] = failure.describe()
        _notify("created", todo[0].fingerprint)
        self.ledger.record_created(rows, self.now(), forget=list(refused), also=self.on_recorded)
        for recorded in rows:
            _notify("recorded", recorded[0])
        _notify("chunk", todo[-1].fingerprint)
        return keys, refused

    def _settle_known(self, plans: Sequence[TicketPlan], keys: dict[str, str]) -> list[TicketPlan]:
        """Plans whose fingerprint already had a row: link the tickets recorded, reconcile the
        intents left behind (their keys go to ``keys``); returns the plans to create again,
        their intents restamped."""
        known = self.ledger.get_many([plan.fingerprint for plan in plans])
        linked: list[tuple[TicketPlan, TicketRow]] = []
        pending: list[tuple[TicketPlan, TicketRow]] = []
        vanished: list[TicketPlan] = []
        for plan in plans:
            row = known.get(plan.fingerprint)
            if row is None:
                # Its intent was dropped (Jira refused it) between our insert and this read.
                vanished.append(plan)
            elif row.state == "created" and row.key:
                linked.append((plan, row))
                keys[plan.fingerprint] = row.key
            else:
                pending.append((plan, row))
        self._link(linked)
        found = self.reconcile(pending)
        keys.update(found)
        retry = [plan for plan, _ in pending if plan.fingerprint not in found]
        self.ledger.retry_intents([p.fingerprint for p in retry], self.now())
        if vanished:
            again = self.ledger.claim_intents(
                [(p.fingerprint, p.draft.project) for p in vanished], self.now()
            )
            for plan in vanished:
                if plan.fingerprint in again:
                    _notify("intent", plan.fingerprint)
                    retry.append(plan)
        return retry

    # -- duplicates ----------------------------------------------------------------------

    def sweep_duplicates(self, fingerprints: Sequence[str]) -> list[str]:
        """Close every issue but the oldest for each fingerprint; returns the closed keys."""
        by_fp: dict[str, list[Issue]] = {}
        for issue in self._search_labels(list(fingerprints)):
            for label in issue.labels:
                if label.startswith(FINGERPRINT_LABEL_PREFIX):
                    by_fp.setdefault(label.removeprefix(FINGERPRINT_LABEL_PREFIX), []).append(issue)
        closed: list[str] = []
        for fingerprint, issues in by_fp.items():
            if fingerprint not in fingerprints or len(issues) < 2:
                continue
            issues.sort(key=lambda i: (i.created_ms, int(i.id)))
            keep = issues[0]
            row = self.ledger.get(fingerprint)
            if row is not None and row.key != keep.key:
                self.ledger.replace_key(fingerprint, keep.key, keep.id, "")
            for duplicate in issues[1:]:
                if duplicate.status_category == "done":
                    continue
                self.client.move_to(
                    duplicate.key,
                    category="done",
                    resolution="Duplicate",
                    comment=Document.of_text(f"Duplicate of {keep.key}, closed by reclaim."),
                )
                closed.append(duplicate.key)
        return closed
