"""Annotators taking qualification tests: where they stand with each test, starting an attempt,
submitting it, and what they see of it.

An attempt draws its questions at random from the test's bank when it starts and fixes its
deadline; past the deadline it scores 0 whatever is sent. Passing grants the test's skill (scoped
to the test's client for a private test). Whether an annotator may start is one pure decision,
`standing`, over their attempts and grants. Annotators never see an answer key: nothing here
returns one. Services flush, never commit.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed, json_pointer
from app.label_schema import validate_answer
from app.label_schema.grading import grade_answer
from app.models.qualification import (
    AttemptQuestion,
    AttemptStatus,
    GrantSource,
    QualificationAttempt,
    QualificationQuestion,
    QualificationTest,
    Skill,
    SkillGrant,
)
from qualification_tests import schemas
from qualification_tests.errors import (
    AlreadyQualified,
    AttemptAlreadyGraded,
    AttemptLimitReached,
    ConcurrentStart,
    NotEnoughQuestions,
    RetakeCooldown,
    SkillRevoked,
)
from qualification_tests.question_bank import schema_of
from qualification_tests.skills import skill_slugs

# Why an annotator may not start an attempt, by standing: the problem and its detail.
_CANNOT_START: dict[str, tuple[type[Conflict], str]] = {
    "passed": (AlreadyQualified, "You have passed this test; its skill is in force"),
    "revoked": (SkillRevoked, "The skill this test granted you was revoked by an admin"),
    "exhausted": (AttemptLimitReached, "No attempts left at this test"),
    "failed": (RetakeCooldown, "The retake cooldown is still running"),
}
_PASS_SLACK = 1e-9  # weighted means of exact fractions may land an ulp below the threshold
_random = random.SystemRandom()


@dataclass(frozen=True)
class TestStanding:
    """Where an annotator stands with one test."""

    state: schemas.TestState
    open_attempt_id: int | None
    passed_until: datetime | None
    retake_after: datetime | None
    attempts_used: int
    attempts_left: int | None
    can_start: bool


def standing(
    test: QualificationTest,
    attempts: Sequence[QualificationAttempt],
    grants_by_attempt: Mapping[int, SkillGrant],
    now: datetime,
) -> TestStanding:
    """Decide an annotator's standing from their attempts at `test` (oldest first).

    Attempts since the last pass count towards `max_attempts`, so a grant that expired can be
    renewed. A pass whose grant is still in force blocks retakes; one an admin revoked blocks
    them too (retaking must not undo an admin's decision; an admin can grant again). An open
    attempt past its deadline counts as a failed one finished at its deadline."""
    last_pass = None
    for attempt in attempts:
        if attempt.passed:
            last_pass = attempt
    since = [a for a in attempts if last_pass is None or a.id > last_pass.id]
    used = len(since)
    left = None if test.max_attempts is None else max(test.max_attempts - used, 0)
    open_ = next((a for a in since if a.status is AttemptStatus.open and a.deadline > now), None)
    if open_ is not None:
        return TestStanding("in_progress", open_.id, None, None, used, left, True)
    if last_pass is not None and not since:
        grant = grants_by_attempt.get(last_pass.id)
        if grant is not None and grant.revoked_at is not None:
            return TestStanding("revoked", None, None, None, used, left, False)
        if grant is not None and (grant.expires_at is None or grant.expires_at > now):
            return TestStanding("passed", None, grant.expires_at, None, used, left, False)
    last = since[-1] if since else None
    retake_after = None
    if last is not None:
        finished = last.finished_at or last.deadline
        retake_after = finished + timedelta(seconds=test.retake_cooldown_seconds)
    if left == 0:
        return TestStanding("exhausted", None, None, None, used, left, False)
    if last is None:
        first: schemas.TestState = "expired" if last_pass is not None else "never_taken"
        return TestStanding(first, None, None, None, used, left, True)
    waiting = retake_after is not None and retake_after > now
    return TestStanding("failed", None, None, retake_after, used, left, not waiting)


def _attempts_and_grants(
    session: Session, annotator_id: int, test_ids: Sequence[int]
) -> tuple[dict[int, list[QualificationAttempt]], dict[int, SkillGrant]]:
    attempts: dict[int, list[QualificationAttempt]] = defaultdict(list)
    if not test_ids:
        return attempts, {}
    rows = session.scalars(
        select(QualificationAttempt)
        .where(
            QualificationAttempt.annotator_id == annotator_id,
            QualificationAttempt.test_id.in_(test_ids),
        )
        .order_by(QualificationAttempt.id)
    ).all()
    for attempt in rows:
        attempts[attempt.test_id].append(attempt)
    passed_ids = [a.id for a in rows if a.passed]
    grants = (
        {
            g.attempt_id: g
            for g in session.scalars(
                select(SkillGrant).where(SkillGrant.attempt_id.in_(passed_ids))
            )
            if g.attempt_id is not None
        }
        if passed_ids
        else {}
    )
    return attempts, grants


def get_test_for_annotator(session: Session, test_id: int) -> QualificationTest:
    """An active test (any annotator may take it); 404 otherwise."""
    test = session.get(QualificationTest, test_id)
    if test is None or not test.is_active:
        raise NotFound("No such qualification test")
    return test


@dataclass(frozen=True)
class TestForAnnotator:
    """An active test as an annotator sees it: the test (never its questions' keys), the slug of
    the skill it grants, and where the annotator stands with it."""

    test: QualificationTest
    skill: str
    standing: TestStanding


def available_tests(session: Session, annotator_id: int) -> list[TestForAnnotator]:
    """Active tests with the annotator's standing in each (three queries)."""
    tests = list(
        session.scalars(
            select(QualificationTest)
            .where(QualificationTest.is_active.is_(True))
            .order_by(QualificationTest.id)
        )
    )
    attempts, grants = _attempts_and_grants(session, annotator_id, [t.id for t in tests])
    slugs = skill_slugs(session, {t.skill_id for t in tests})
    now = utcnow()
    return [
        TestForAnnotator(t, slugs[t.skill_id], standing(t, attempts[t.id], grants, now))
        for t in tests
    ]


def annotator_test(session: Session, annotator_id: int, test_id: int) -> TestForAnnotator:
    """One active test with the annotator's standing in it; 404 for inactive or unknown tests."""
    test = get_test_for_annotator(session, test_id)
    attempts, grants = _attempts_and_grants(session, annotator_id, [test.id])
    slug = skill_slugs(session, {test.skill_id})[test.skill_id]
    return TestForAnnotator(test, slug, standing(test, attempts[test.id], grants, utcnow()))


def _open_attempt(session: Session, test_id: int, annotator_id: int) -> QualificationAttempt | None:
    return session.scalar(
        select(QualificationAttempt).where(
            QualificationAttempt.test_id == test_id,
            QualificationAttempt.annotator_id == annotator_id,
            QualificationAttempt.status == AttemptStatus.open,
        )
    )


def _close_late(attempt: QualificationAttempt) -> None:
    """Close an attempt whose deadline passed unanswered: score 0, failed."""
    attempt.status = AttemptStatus.graded
    attempt.finished_at = attempt.deadline
    attempt.score, attempt.passed, attempt.late = 0.0, False, True


def start_attempt(
    session: Session, annotator_id: int, test_id: int
) -> tuple[QualificationAttempt, bool]:
    """Start an attempt: draw `questions_per_attempt` distinct active questions at random and fix
    the deadline. Returns (attempt, created). While an attempt is open (before its deadline) the
    open one is returned instead, also when starts race: the partial unique index on open
    attempts lets one insert win and the others read the winner. 409 while the cooldown runs,
    when no attempts are left, when the annotator holds a pass in force, or when the bank has too
    few questions."""
    test = get_test_for_annotator(session, test_id)
    now = utcnow()
    existing = _open_attempt(session, test.id, annotator_id)
    if existing is not None:
        if existing.deadline > now:
            return existing, False
        _close_late(existing)
        session.flush()
    attempts, grants = _attempts_and_grants(session, annotator_id, [test.id])
    s = standing(test, attempts[test.id], grants, now)
    if not s.can_start:
        problem, message = _CANNOT_START[s.state]  # `standing` refuses starts in these states only
        raise problem(
            message,
            state=s.state,
            retake_after=s.retake_after.isoformat() if s.retake_after else None,
            attempts_left=s.attempts_left,
        )
    bank = list(
        session.scalars(
            select(QualificationQuestion.id).where(
                QualificationQuestion.test_id == test.id, QualificationQuestion.retired_at.is_(None)
            )
        )
    )
    if len(bank) < test.questions_per_attempt:
        raise NotEnoughQuestions("This test does not have enough questions yet")
    attempt = QualificationAttempt(
        test_id=test.id,
        annotator_id=annotator_id,
        status=AttemptStatus.open,
        started_at=now,
        deadline=now + timedelta(seconds=test.time_limit_seconds),
        late=False,
    )
    try:
        with session.begin_nested():
            session.add(attempt)
            session.flush()
    except IntegrityError:
        winner = _open_attempt(session, test.id, annotator_id)
        if winner is None:  # the winner finished in between: vanishingly rare, ask to retry
            raise ConcurrentStart("Another start of this test just happened; try again") from None
        return winner, False
    drawn = _random.sample(bank, test.questions_per_attempt)
    session.add_all(
        AttemptQuestion(attempt_id=attempt.id, position=i, question_id=qid)
        for i, qid in enumerate(drawn)
    )
    session.flush()
    return attempt, True


def get_attempt(
    session: Session, annotator_id: int, attempt_id: int, *, lock: bool = False
) -> QualificationAttempt:
    """The annotator's own attempt; 404 for anyone else's."""
    stmt = select(QualificationAttempt).where(QualificationAttempt.id == attempt_id)
    if lock:
        stmt = stmt.with_for_update()
    attempt = session.scalar(stmt)
    if attempt is None or attempt.annotator_id != annotator_id:
        raise NotFound("No such attempt")
    return attempt


def _attempt_questions(
    session: Session, attempt_id: int
) -> list[tuple[AttemptQuestion, QualificationQuestion]]:
    return [
        (aq, q)
        for aq, q in session.execute(
            select(AttemptQuestion, QualificationQuestion)
            .join(QualificationQuestion, QualificationQuestion.id == AttemptQuestion.question_id)
            .where(AttemptQuestion.attempt_id == attempt_id)
            .order_by(AttemptQuestion.position)
        ).all()
    ]


def submit_attempt(
    session: Session, annotator_id: int, attempt_id: int, answers: Sequence[schemas.AnswerIn]
) -> QualificationAttempt:
    """Grade an open attempt. Answers are validated against the test's schema first: any problem
    rejects the submission (422, a pointer per problem) and nothing is stored. An unanswered
    question scores 0. The score is the weight-weighted mean of `grade_answer` per question; at
    or above the passing score the test's skill is granted. Past the deadline the attempt scores
    0 whatever was sent. 409 if already graded."""
    attempt = get_attempt(session, annotator_id, attempt_id, lock=True)
    if attempt.status is not AttemptStatus.open:
        raise AttemptAlreadyGraded("This attempt is already graded")
    test = session.get_one(QualificationTest, attempt.test_id)
    now = utcnow()
    if now > attempt.deadline:
        _close_late(attempt)
        attempt.finished_at = now
        session.flush()
        return attempt
    schema = schema_of(test)
    drawn = _attempt_questions(session, attempt.id)
    by_id = {q.id: (aq, q) for aq, q in drawn}
    given: dict[int, dict[str, Any]] = {}
    problems: list[dict[str, Any]] = []
    for index, entry in enumerate(answers):
        at: list[str | int] = ["answers", index]
        if entry.question_id not in by_id:
            problems.append(
                {
                    "pointer": json_pointer([*at, "question_id"]),
                    "detail": "not a question of this attempt",
                }
            )
            continue
        if entry.question_id in given:
            problems.append(
                {"pointer": json_pointer([*at, "question_id"]), "detail": "answered twice"}
            )
            continue
        payload = by_id[entry.question_id][1].payload
        for problem in validate_answer(schema, entry.answer, payload):
            problems.append(
                {
                    "pointer": json_pointer([*at, "answer"])
                    + str(problem["pointer"]).removeprefix("#"),
                    "detail": problem["detail"],
                }
            )
        given[entry.question_id] = entry.answer
    if problems:
        raise ValidationFailed("Some answers are not valid", errors=problems)
    weighted, total = [], []
    for aq, q in drawn:
        answer = given.get(q.id)
        score = 0.0 if answer is None else grade_answer(schema, answer, q.answer_key, q.payload)
        aq.answer, aq.score = answer, score
        weighted.append(score * q.weight)
        total.append(q.weight)
    score = math.fsum(weighted) / math.fsum(total)
    attempt.status = AttemptStatus.graded
    attempt.finished_at = now
    attempt.score = min(max(score, 0.0), 1.0)
    attempt.passed = score >= test.passing_score - _PASS_SLACK
    if attempt.passed:
        session.add(
            SkillGrant(
                annotator_id=annotator_id,
                skill_id=test.skill_id,
                level=test.skill_level,
                source=GrantSource.test,
                attempt_id=attempt.id,
                client_id=test.client_id,
                granted_at=now,
                expires_at=now + timedelta(days=test.grant_valid_days)
                if test.grant_valid_days
                else None,
            )
        )
    session.flush()
    return attempt


@dataclass(frozen=True)
class AttemptView:
    """What an annotator may see of their attempt: the questions drawn (payloads; their keys stay
    on the question rows and are never shown), the skill granted if it passed, and whether
    per-question feedback (scores, explanations) is shown."""

    attempt: QualificationAttempt
    passing_score: float
    questions: list[tuple[AttemptQuestion, QualificationQuestion]]
    granted: tuple[SkillGrant, str] | None  # the grant and its skill's slug
    show_feedback: bool


def attempt_view(session: Session, attempt: QualificationAttempt) -> AttemptView:
    """The annotator's view of an attempt (two or three queries). Feedback is shown once the
    attempt is graded, if the test is set to show it."""
    test = session.get_one(QualificationTest, attempt.test_id)
    granted = None
    if attempt.passed:
        row = session.execute(
            select(SkillGrant, Skill.slug)
            .join(Skill, Skill.id == SkillGrant.skill_id)
            .where(SkillGrant.attempt_id == attempt.id)
        ).first()
        if row is not None:
            granted = (row[0], row[1])
    return AttemptView(
        attempt=attempt,
        passing_score=test.passing_score,
        questions=_attempt_questions(session, attempt.id),
        granted=granted,
        show_feedback=attempt.status is AttemptStatus.graded and test.show_feedback,
    )


def attempt_history(
    session: Session,
    *,
    test_id: int | None = None,
    annotator_id: int | None = None,
    client_id: int | None = None,
) -> list[QualificationAttempt]:
    """Attempts (at most 1000), newest first, filtered by test, annotator and/or the tests'
    owning client."""
    stmt = select(QualificationAttempt).order_by(QualificationAttempt.id.desc())
    if test_id is not None:
        stmt = stmt.where(QualificationAttempt.test_id == test_id)
    if annotator_id is not None:
        stmt = stmt.where(QualificationAttempt.annotator_id == annotator_id)
    if client_id is not None:
        stmt = stmt.join(QualificationTest, QualificationTest.id == QualificationAttempt.test_id)
        stmt = stmt.where(QualificationTest.client_id == client_id)
    return list(session.scalars(stmt.limit(1000)))
