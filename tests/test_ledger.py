"""Ledger: what tickets add to the journal's counts, and when they close; pure, no event loop."""

from dataclasses import dataclass

from bot.community import ledger
from bot.community.ledger import Held, Ledger
from bot.images import ImageFile
from bot.jobs.model import JobResult
from bot.jobs.progress import JobState

KEY = (1001, 7)
DAY = 86400.0
NOON = 1_796_083_200.0 + DAY / 2


@dataclass
class Ran:
    """A job as a ticket reads it (bot.jobs.model.Job's id, outcome and run_seconds)."""

    id: str
    outcome: JobResult | None = None
    run_seconds: float = 0.0

    def end(self, images: int, seconds: float) -> None:
        outputs = tuple(ImageFile(f"{n}.png", b"png") for n in range(images))
        self.outcome = JobResult(self.id, JobState.DONE, outputs=outputs)
        self.run_seconds = seconds


def test_tickets_count_unqueued_then_ended_jobs_until_the_journal_has_them() -> None:
    book = Ledger()
    waiting, running, ended = book.take(KEY, NOON), book.take(KEY, NOON), book.take(KEY, NOON)
    running.bind(Ran("running"))
    job = Ran("ended")
    ended.bind(job)
    job.end(images=2, seconds=41.5)
    assert book.held(KEY, since=NOON - 60, journalled=()) == Held(2, 41.5, 1)
    waiting.release()  # refused later: its place comes back
    assert book.held(KEY, since=NOON - 60, journalled=()) == Held(2, 41.5, 0)
    assert book.held(KEY, since=NOON - 60, journalled={"ended"}) == Held(0, 0.0, 0)
    assert book.held(KEY, since=NOON - 60, journalled=()) == Held(0, 0.0, 0)  # closed for good
    assert repr(book) == "Ledger(1 tickets)"  # the running one


def test_a_release_after_the_job_was_queued_changes_nothing() -> None:
    book = Ledger()
    ticket = book.take(KEY, NOON)
    ticket.bind(Ran("queued"))
    ticket.release()
    assert book.held(KEY, since=NOON - 60, journalled=()) == Held(0, 0.0, 0)
    assert repr(book) == "Ledger(1 tickets)"


def test_an_earlier_days_ended_job_does_not_count_today() -> None:
    book = Ledger()
    job = Ran("yesterday")
    book.take(KEY, NOON - DAY).bind(job)
    job.end(images=4, seconds=10.0)
    assert book.held(KEY, since=NOON - DAY / 2, journalled=()) == Held(0, 0.0, 0)
    assert repr(book) == "Ledger(0 tickets)"


def test_tickets_of_members_who_never_come_back_are_swept(monkeypatch) -> None:
    monkeypatch.setattr(ledger, "TICKETS_KEPT", 3)
    book = Ledger()
    for user in range(3):
        job = Ran(f"job-{user}")
        book.take((1001, user), NOON).bind(job)
        job.end(images=1, seconds=1.0)
    book.take((1001, 99), NOON + DAY + 1)
    assert repr(book) == "Ledger(1 tickets)"


def test_an_exempt_members_tickets_count_only_what_is_not_queued() -> None:
    book = Ledger()
    book.take(KEY, NOON)
    job = Ran("ended")
    book.take(KEY, NOON).bind(job)
    job.end(images=3, seconds=5.0)
    assert book.unqueued(KEY) == 1
    assert repr(book) == "Ledger(1 tickets)"  # what ended is not kept for an exempt member


def test_a_sweep_runs_again_only_once_twice_as_many_are_kept(monkeypatch) -> None:
    monkeypatch.setattr(ledger, "TICKETS_KEPT", 2)
    book = Ledger()
    for user in range(3):  # still waiting: a sweep keeps them all
        book.take((1001, user), NOON)
    assert book._kept_after_sweep == 3
    for user in range(3, 6):
        book.take((1001, user), NOON)
    assert book._kept_after_sweep == 3  # no sweep until more than 6
    book.take((1001, 6), NOON)
    assert book._kept_after_sweep == 7
