"""The deadline is a snapshot: at each student's own deadline the grades service
takes a copy of their assignment folder by itself.

The schedule is in PostgreSQL (migration 0005, ``deadline_snapshots``), so it survives
restarts and outages:

1. **The round of an assignment.** When an assignment's due date comes, :class:`Deadliner`
   claims it (``FOR UPDATE SKIP LOCKED``, a lease) and plans a row for every student of
   the class's roster (read fresh from the hub) at their own deadline: the due date, or
   their extension. A due date changed later plans again; an extension granted or revoked
   moves the student's row (:meth:`~.store.GradesStore.grant_extension`).
2. **The snapshots.** Rows whose deadline came are claimed in a batch (``FOR UPDATE SKIP
   LOCKED``, a lease) and taken all at once: the homes helper batches them into a few
   containers (running and stopped servers alike; no server is started). Each is recorded
   with its row's end in one transaction that first checks the claim
   (:meth:`~.store.GradesStore.record_deadline_snapshot`): exactly once, even when two
   processes run or one stops half-way (its claims run out after the lease and are taken
   then).

What a snapshot becomes:

* a new version of kind ``deadline``, on time by construction: it stands for the deadline
  (``deadline_for``) and records when it was really taken (``submitted_at``), so one taken
  late because the service or Docker was down still counts as on time;
* nothing new when the student's latest version is on time and holds the same folder
  (``unchanged``: that version stands);
* ``missing``, with the reason, when there is no home (the class server was never
  started), no assignment folder, or a folder that cannot be taken (too large, a link);
* when the helper or the store fails, the row stays due and is tried again
  ``retry_after`` seconds later.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from common.errors import Unavailable
from services.base.hubapi import HubAPIError
from services.base.membership import Membership

from .collect import Collector
from .store import GradesStore


class Deadliner:
    """Plans and takes the deadline snapshots that are due."""

    def __init__(
        self,
        *,
        store: GradesStore,
        collector: Collector,
        membership: Membership,
        lease: float = 300.0,
        retry_after: float = 30.0,
        batch: int = 1000,
        log: logging.Logger | None = None,
    ):
        if lease <= 0 or retry_after <= 0 or batch < 1:
            raise ValueError("lease and retry_after must be positive, batch at least 1")
        self.store = store
        self.collector = collector
        self.membership = membership
        self.lease = lease
        self.retry_after = retry_after
        self.batch = batch
        self.log = log or logging.getLogger(__name__)

    async def plan_due(self, limit: int = 50) -> int:
        """Plan the rounds of assignments whose due date came (at most ``limit``); how
        many students were planned. The hub down: the round is tried again later."""
        planned = 0
        for _ in range(limit):
            claimed = await self.store.claim_deadline_round(lease=max(60.0, self.retry_after))
            if claimed is None:
                break
            where = f"{claimed.class_code}/{claimed.slug}"
            try:
                students = await self.membership.students(claimed.class_code)
            except (Unavailable, HubAPIError) as e:
                self.log.warning("Deadline of %s not planned yet (the roster): %s", where, e)
                await self.store.postpone_deadline_round(claimed, self.retry_after)
                continue
            n = await self.store.plan_deadlines(claimed, list(students))
            if n is not None:
                self.log.info("Deadline of %s: snapshots planned for %d student(s)", where, n)
                planned += n
        return planned

    async def snapshot_due(self) -> Counter:
        """Take every deadline snapshot that is due now (up to ``batch`` at once); how
        many ended in each way (taken, unchanged, missing, failed, lost)."""
        claims = await self.store.claim_deadline_snapshots(lease=self.lease, limit=self.batch)
        if not claims:
            return Counter()
        results = await asyncio.gather(
            *(self.collector.deadline_snapshot(c, retry_after=self.retry_after) for c in claims),
            return_exceptions=True,
        )
        counts: Counter = Counter()
        for claimed, result in zip(claims, results, strict=True):
            if isinstance(result, Unavailable):
                # the store went away while recording: the claim runs out and it is
                # taken again (the snapshot is on time whenever it is recorded)
                self.log.warning(
                    "Deadline snapshot of %s/%s not recorded: %s",
                    claimed.username,
                    claimed.slug,
                    result,
                )
                counts["failed"] += 1
            elif isinstance(result, BaseException):
                self.log.error(
                    "Deadline snapshot of %s/%s failed",
                    claimed.username,
                    claimed.slug,
                    exc_info=result,
                )
                counts["failed"] += 1
            else:
                counts[result] += 1
        self.log.info(
            "Deadline snapshots: %s",
            ", ".join(f"{n} {state}" for state, n in sorted(counts.items())),
        )
        return counts

    async def run_once(self) -> Counter:
        """One round: plan what is due, then take what is due."""
        await self.plan_due()
        return await self.snapshot_due()
