"""Skills, grants, annotator profiles, job bans, qualification tests and attempts.
Services flush, never commit. Eligibility lives in `qualification_tests.eligibility`.

Visibility: public tests (no `client_id`) are the admins'; a client's private test is visible to
that client and to admins only (404 for everyone else). Annotators see active tests, and never an
answer key: nothing here returns keys to them, the annotator schemas have no field for one.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.errors import Conflict, NotFound, ValidationFailed, json_pointer
from app.core.security import Principal
from app.label_schema import (
    LabelSchema,
    parse_label_schema_at,
    required_fields,
    validate_answer,
)
from app.models.accounts import Role, User
from app.models.jobs import Job, Tier
from app.models.qualification import (
    NEUTRAL_REPUTATION,
    AnnotatorProfile,
    AttemptQuestion,
    AttemptStatus,
    GrantSource,
    JobBan,
    QualificationAttempt,
    QualificationQuestion,
    QualificationTest,
    Skill,
    SkillGrant,
)
from qualification_tests import schemas
from qualification_tests.grading import grade_answer

CORRECT = 0.999  # a question counts as answered correctly at this score or above
_PASS_SLACK = 1e-9  # weighted means of exact fractions may land an ulp below the threshold
_random = random.SystemRandom()


# --- skills -----------------------------------------------------------------------------------


def create_skill(session: Session, body: schemas.SkillCreate) -> Skill:
    """Add a skill to the catalogue; 409 if the slug is taken."""
    if session.scalar(select(Skill.id).where(Skill.slug == body.slug)) is not None:
        raise Conflict(
            f"Skill {body.slug!r} already exists",
            errors=[{"pointer": "#/slug", "detail": "already exists"}],
        )
    skill = Skill(
        slug=body.slug, name=body.name, description=body.description, max_level=body.max_level
    )
    session.add(skill)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(f"Skill {body.slug!r} already exists") from None
    return skill


def list_skills(session: Session) -> list[Skill]:
    return list(session.scalars(select(Skill).order_by(Skill.slug)))


def get_skill(session: Session, slug: str) -> Skill:
    skill = session.scalar(select(Skill).where(Skill.slug == slug))
    if skill is None:
        raise NotFound(f"No skill {slug!r}")
    return skill


def update_skill(session: Session, skill: Skill, body: schemas.SkillUpdate) -> Skill:
    for name in ("name", "description", "max_level"):
        value = getattr(body, name)
        if value is not None:
            setattr(skill, name, value)
    session.flush()
    return skill


def check_required_skills(
    session: Session,
    requirements: Sequence[Mapping[str, Any]],
    *,
    pointer: str = "#/required_skills",
) -> None:
    """Raise 422 naming every requirement whose skill slug is not in the catalogue or whose level
    is above the skill's maximum. Called by the jobs service when a job's skills are set."""
    slugs = {str(r["skill"]) for r in requirements}
    if not slugs:
        return
    max_levels = dict(
        session.execute(select(Skill.slug, Skill.max_level).where(Skill.slug.in_(slugs))).all()
    )
    problems: list[dict[str, Any]] = []
    for index, requirement in enumerate(requirements):
        slug, level = str(requirement["skill"]), int(requirement.get("level", 1))
        if slug not in max_levels:
            problems.append(
                {"pointer": f"{pointer}/{index}/skill", "detail": f"unknown skill {slug!r}"}
            )
        elif level > max_levels[slug]:
            problems.append(
                {
                    "pointer": f"{pointer}/{index}/level",
                    "detail": f"skill {slug!r} has levels 1..{max_levels[slug]}",
                }
            )
    if problems:
        raise ValidationFailed("The job requires skills that do not exist", errors=problems)


# --- grants -----------------------------------------------------------------------------------


def get_annotator(session: Session, user_id: int) -> User:
    """The annotator with this id; 404 for unknown ids and for users who are not annotators."""
    user = session.get(User, user_id)
    if user is None or user.role is not Role.annotator:
        raise NotFound("No such annotator")
    return user


def grant_skill(
    session: Session, annotator_id: int, body: schemas.GrantCreate, *, admin_id: int
) -> SkillGrant:
    """An admin grants a skill level by hand, with a reason (and optionally an expiry)."""
    get_annotator(session, annotator_id)
    skill = get_skill(session, body.skill)
    if body.level > skill.max_level:
        raise ValidationFailed(
            "Level above the skill's maximum",
            errors=[{"pointer": "#/level", "detail": f"levels are 1..{skill.max_level}"}],
        )
    now = utcnow()
    if body.expires_at is not None and body.expires_at <= now:
        raise ValidationFailed(
            "The grant would already be expired",
            errors=[{"pointer": "#/expires_at", "detail": "must be in the future"}],
        )
    grant = SkillGrant(
        annotator_id=annotator_id,
        skill_id=skill.id,
        level=body.level,
        source=GrantSource.admin,
        granted_by_id=admin_id,
        reason=body.reason,
        granted_at=now,
        expires_at=body.expires_at,
    )
    session.add(grant)
    session.flush()
    return grant


def revoke_grant(session: Session, grant_id: int, reason: str, *, admin_id: int) -> SkillGrant:
    """Revoke a grant, recording who and why; the row stays. 409 if already revoked."""
    grant = session.scalar(select(SkillGrant).where(SkillGrant.id == grant_id).with_for_update())
    if grant is None:
        raise NotFound("No such grant")
    if grant.revoked_at is not None:
        raise Conflict("This grant is already revoked")
    grant.revoked_at = utcnow()
    grant.revoked_by_id = admin_id
    grant.revoke_reason = reason
    session.flush()
    return grant


def list_grants(session: Session, annotator_id: int) -> list[tuple[SkillGrant, str]]:
    """Every grant of the annotator (revoked and expired too), newest first, with skill slugs."""
    return [
        (grant, slug)
        for grant, slug in session.execute(
            select(SkillGrant, Skill.slug)
            .join(Skill, Skill.id == SkillGrant.skill_id)
            .where(SkillGrant.annotator_id == annotator_id)
            .order_by(SkillGrant.id.desc())
        ).all()
    ]


def grant_out(grant: SkillGrant, slug: str) -> schemas.GrantOut:
    return schemas.GrantOut(
        id=grant.id,
        annotator_id=grant.annotator_id,
        skill=slug,
        level=grant.level,
        source=grant.source.value,
        attempt_id=grant.attempt_id,
        scoped_to_client=grant.client_id is not None,
        granted_by_id=grant.granted_by_id,
        reason=grant.reason,
        granted_at=grant.granted_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        revoked_by_id=grant.revoked_by_id,
        revoke_reason=grant.revoke_reason,
    )


def my_skills(session: Session, annotator_id: int) -> list[schemas.MySkill]:
    """The annotator's grants in force (not revoked, not expired)."""
    now = utcnow()
    return [
        schemas.MySkill(
            skill=slug,
            level=g.level,
            expires_at=g.expires_at,
            scoped_to_client=g.client_id is not None,
        )
        for g, slug in list_grants(session, annotator_id)
        if g.revoked_at is None and (g.expires_at is None or g.expires_at > now)
    ]


# --- profiles and bans ------------------------------------------------------------------------


def get_profile(session: Session, annotator_id: int) -> schemas.ProfileOut:
    """The annotator's reputation and tier (defaults 0.5 and entry when never set)."""
    get_annotator(session, annotator_id)
    profile = session.get(AnnotatorProfile, annotator_id)
    if profile is None:
        return schemas.ProfileOut(
            annotator_id=annotator_id,
            reputation=NEUTRAL_REPUTATION,
            tier=Tier.entry,
            updated_at=None,
        )
    return schemas.ProfileOut(
        annotator_id=annotator_id,
        reputation=profile.reputation,
        tier=profile.tier,
        updated_at=profile.updated_at,
    )


def set_profile(
    session: Session, annotator_id: int, body: schemas.ProfileUpdate, *, admin_id: int
) -> schemas.ProfileOut:
    """Set reputation and/or tier (an admin's decision until reputation is computed)."""
    get_annotator(session, annotator_id)
    profile = session.get(AnnotatorProfile, annotator_id, with_for_update=True)
    if profile is None:
        profile = AnnotatorProfile(
            user_id=annotator_id, reputation=NEUTRAL_REPUTATION, tier=Tier.entry
        )
        session.add(profile)
    if body.reputation is not None:
        profile.reputation = body.reputation
    if body.tier is not None:
        profile.tier = body.tier
    profile.updated_at = utcnow()
    profile.updated_by_id = admin_id
    session.flush()
    return get_profile(session, annotator_id)


def ban_from_job(session: Session, job: Job, body: schemas.BanCreate, *, by_id: int) -> JobBan:
    """Ban an annotator from `job` (until a time, or for good). A ban already in force is
    replaced (lifted and a new one recorded), so the history shows every decision."""
    get_annotator(session, body.annotator_id)
    now = utcnow()
    if body.until is not None and body.until <= now:
        raise ValidationFailed(
            "The ban would already be over",
            errors=[{"pointer": "#/until", "detail": "must be in the future"}],
        )
    for ban in _bans_in_force(session, job.id, body.annotator_id, now):
        ban.lifted_at, ban.lifted_by_id = now, by_id
    ban = JobBan(
        job_id=job.id,
        annotator_id=body.annotator_id,
        until=body.until,
        reason=body.reason,
        created_by_id=by_id,
        created_at=now,
    )
    session.add(ban)
    session.flush()
    return ban


def lift_ban(session: Session, job: Job, annotator_id: int, *, by_id: int) -> list[JobBan]:
    """Lift the annotator's bans in force on `job`; 404 if there is none."""
    bans = _bans_in_force(session, job.id, annotator_id, utcnow())
    if not bans:
        raise NotFound("This annotator is not banned from this job")
    now = utcnow()
    for ban in bans:
        ban.lifted_at, ban.lifted_by_id = now, by_id
    session.flush()
    return bans


def list_bans(session: Session, job: Job) -> list[JobBan]:
    return list(session.scalars(select(JobBan).where(JobBan.job_id == job.id).order_by(JobBan.id)))


def _bans_in_force(session: Session, job_id: int, annotator_id: int, now: datetime) -> list[JobBan]:
    return [
        ban
        for ban in session.scalars(
            select(JobBan)
            .where(
                JobBan.job_id == job_id,
                JobBan.annotator_id == annotator_id,
                JobBan.lifted_at.is_(None),
            )
            .with_for_update()
        )
        if ban.until is None or ban.until > now
    ]


# --- tests and questions ----------------------------------------------------------------------


def schema_of(test: QualificationTest) -> LabelSchema:
    return LabelSchema.model_validate(test.label_schema)


def create_test(
    session: Session, principal: Principal, body: schemas.TestCreate
) -> QualificationTest:
    """Create a test: public when an admin creates it, private to the client otherwise.
    Questions given here are checked like `add_questions` (all problems reported at once)."""
    schema = parse_label_schema_at(body.label_schema)
    skill = get_skill_for_body(session, body.skill)
    if body.skill_level > skill.max_level:
        raise ValidationFailed(
            "Level above the skill's maximum",
            errors=[{"pointer": "#/skill_level", "detail": f"levels are 1..{skill.max_level}"}],
        )
    problems = _question_problems(schema, body.questions, "#/questions")
    if problems:
        raise ValidationFailed("Some questions are not valid", errors=problems)
    test = QualificationTest(
        client_id=None if principal.role is Role.admin else principal.id,
        created_by_id=principal.id,
        title=body.title,
        instructions=body.instructions or "",
        label_schema=schema.model_dump(mode="json"),
        questions_per_attempt=body.questions_per_attempt,
        time_limit_seconds=body.time_limit_seconds,
        passing_score=body.passing_score,
        max_attempts=body.max_attempts,
        retake_cooldown_seconds=body.retake_cooldown_seconds or 0,
        skill_id=skill.id,
        skill_level=body.skill_level,
        grant_valid_days=body.grant_valid_days,
        show_feedback=bool(body.show_feedback),
        is_active=True,
    )
    session.add(test)
    session.flush()
    _insert_questions(session, test, body.questions)
    return test


def get_skill_for_body(session: Session, slug: str) -> Skill:
    skill = session.scalar(select(Skill).where(Skill.slug == slug))
    if skill is None:
        raise ValidationFailed(
            "Unknown skill", errors=[{"pointer": "#/skill", "detail": f"unknown skill {slug!r}"}]
        )
    return skill


def get_test(
    session: Session, principal: Principal, test_id: int, *, lock: bool = False
) -> QualificationTest:
    """The test if `principal` may manage it: admins any, clients their own; 404 otherwise."""
    stmt = select(QualificationTest).where(QualificationTest.id == test_id)
    if lock:
        stmt = stmt.with_for_update()
    test = session.scalar(stmt)
    if test is None or (principal.role is not Role.admin and test.client_id != principal.id):
        raise NotFound("No such qualification test")
    return test


def list_tests(session: Session, principal: Principal) -> list[QualificationTest]:
    """Admins: every test; clients: their own private tests."""
    stmt = select(QualificationTest).order_by(QualificationTest.id)
    if principal.role is not Role.admin:
        stmt = stmt.where(QualificationTest.client_id == principal.id)
    return list(session.scalars(stmt))


def update_test(
    session: Session, test: QualificationTest, body: schemas.TestUpdate
) -> QualificationTest:
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name not in ("max_attempts", "grant_valid_days"):
            continue  # these have no "unset"
        setattr(test, name, value if name != "instructions" else (value or ""))
    test.updated_at = utcnow()
    session.flush()
    return test


def add_questions(
    session: Session, test: QualificationTest, questions: Sequence[schemas.QuestionCreate]
) -> list[QualificationQuestion]:
    """Add questions to the bank. Every key is validated against the test's schema and its
    question's payload; any problem rejects them all (422, a pointer per problem)."""
    problems = _question_problems(schema_of(test), questions, "#/questions")
    if problems:
        raise ValidationFailed("Some questions are not valid", errors=problems)
    return _insert_questions(session, test, questions)


def _insert_questions(
    session: Session, test: QualificationTest, questions: Sequence[schemas.QuestionCreate]
) -> list[QualificationQuestion]:
    rows = [
        QualificationQuestion(
            test_id=test.id,
            payload=q.payload,
            answer_key=q.answer_key,
            explanation=q.explanation,
            weight=q.weight,
        )
        for q in questions
    ]
    session.add_all(rows)
    session.flush()
    return rows


def _question_problems(
    schema: LabelSchema, questions: Sequence[schemas.QuestionCreate], base: str
) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    fields = required_fields(schema)
    for index, question in enumerate(questions):
        at = f"{base}/{index}"
        for name in fields:
            if name not in question.payload:
                problems.append(
                    {"pointer": f"{at}/payload/{name}", "detail": "field required by the schema"}
                )
        key_problems = validate_answer(schema, question.answer_key, question.payload)
        for problem in key_problems:
            problems.append(
                {
                    "pointer": f"{at}/answer_key" + str(problem["pointer"]).removeprefix("#"),
                    "detail": problem["detail"],
                }
            )
        if not key_problems:
            try:
                grade_answer(schema, question.answer_key, question.answer_key, question.payload)
            except ValueError as exc:
                problems.append({"pointer": f"{at}/answer_key", "detail": str(exc)})
    return problems


def list_questions(session: Session, test: QualificationTest) -> list[QualificationQuestion]:
    return list(
        session.scalars(
            select(QualificationQuestion)
            .where(QualificationQuestion.test_id == test.id)
            .order_by(QualificationQuestion.id)
        )
    )


def retire_question(
    session: Session, test: QualificationTest, question_id: int
) -> QualificationQuestion:
    """Take a question out of future draws; past attempts and statistics keep it."""
    question = session.get(QualificationQuestion, question_id)
    if question is None or question.test_id != test.id:
        raise NotFound("No such question in this test")
    if question.retired_at is None:
        question.retired_at = utcnow()
        session.flush()
    return question


def describe_tests(session: Session, tests: Sequence[QualificationTest]) -> list[schemas.TestOut]:
    """Authors' view of tests (two queries for any number)."""
    ids = [t.id for t in tests]
    active = dict(
        session.execute(
            select(QualificationQuestion.test_id, func.count())
            .where(
                QualificationQuestion.test_id.in_(ids), QualificationQuestion.retired_at.is_(None)
            )
            .group_by(QualificationQuestion.test_id)
        ).all()
    )
    slugs = _skill_slugs(session, {t.skill_id for t in tests})
    return [
        schemas.TestOut(
            id=t.id,
            public=t.client_id is None,
            client_id=t.client_id,
            title=t.title,
            instructions=t.instructions,
            label_schema=t.label_schema,
            skill=slugs[t.skill_id],
            skill_level=t.skill_level,
            questions_per_attempt=t.questions_per_attempt,
            time_limit_seconds=t.time_limit_seconds,
            passing_score=t.passing_score,
            max_attempts=t.max_attempts,
            retake_cooldown_seconds=t.retake_cooldown_seconds,
            grant_valid_days=t.grant_valid_days,
            show_feedback=t.show_feedback,
            is_active=t.is_active,
            active_questions=active.get(t.id, 0),
            created_at=t.created_at,
            updated_at=t.updated_at,
        )
        for t in tests
    ]


def _skill_slugs(session: Session, skill_ids: set[int]) -> dict[int, str]:
    if not skill_ids:
        return {}
    return dict(session.execute(select(Skill.id, Skill.slug).where(Skill.id.in_(skill_ids))).all())


# --- statistics -------------------------------------------------------------------------------


def stats_of(session: Session, test: QualificationTest) -> schemas.TestStats:
    """Pass rate, score distribution and per-question difficulty (to spot broken questions: a
    question almost nobody gets right often has a wrong key). Late attempts count as graded
    attempts but not towards question difficulty (their questions went unanswered)."""
    attempts = list(
        session.execute(
            select(
                QualificationAttempt.status, QualificationAttempt.score, QualificationAttempt.passed
            ).where(QualificationAttempt.test_id == test.id)
        ).all()
    )
    graded = [
        (score, passed) for status, score, passed in attempts if status is AttemptStatus.graded
    ]
    histogram = [0] * 10
    for score, _ in graded:
        histogram[min(int((score or 0.0) * 10), 9)] += 1
    passed = sum(1 for _, p in graded if p)
    per_question = {
        qid: (answered, mean, correct)
        for qid, answered, mean, correct in session.execute(
            select(
                AttemptQuestion.question_id,
                func.count(),
                func.avg(AttemptQuestion.score),
                func.sum(case((AttemptQuestion.score >= CORRECT, 1), else_=0)),
            )
            .join(QualificationQuestion, QualificationQuestion.id == AttemptQuestion.question_id)
            .where(QualificationQuestion.test_id == test.id, AttemptQuestion.score.is_not(None))
            .group_by(AttemptQuestion.question_id)
        ).all()
    }
    questions = []
    for q in list_questions(session, test):
        answered, mean, correct = per_question.get(q.id, (0, None, 0))
        questions.append(
            schemas.QuestionStats(
                question_id=q.id,
                answered=answered,
                mean_score=float(mean) if mean is not None else None,
                share_correct=(int(correct or 0) / answered) if answered else None,
                retired=q.retired_at is not None,
            )
        )
    return schemas.TestStats(
        test_id=test.id,
        attempts=len(attempts),
        graded=len(graded),
        passed=passed,
        pass_rate=passed / len(graded) if graded else None,
        mean_score=math.fsum(s or 0.0 for s, _ in graded) / len(graded) if graded else None,
        score_histogram=histogram,
        questions=questions,
    )


def attempt_history(
    session: Session,
    *,
    test_id: int | None = None,
    annotator_id: int | None = None,
    client_id: int | None = None,
) -> list[schemas.AttemptSummary]:
    """Attempts, newest first, filtered by test, annotator and/or the tests' owning client."""
    stmt = select(QualificationAttempt).order_by(QualificationAttempt.id.desc())
    if test_id is not None:
        stmt = stmt.where(QualificationAttempt.test_id == test_id)
    if annotator_id is not None:
        stmt = stmt.where(QualificationAttempt.annotator_id == annotator_id)
    if client_id is not None:
        stmt = stmt.join(QualificationTest, QualificationTest.id == QualificationAttempt.test_id)
        stmt = stmt.where(QualificationTest.client_id == client_id)
    return [_summary(a) for a in session.scalars(stmt.limit(1000))]


def _summary(a: QualificationAttempt) -> schemas.AttemptSummary:
    return schemas.AttemptSummary(
        id=a.id,
        test_id=a.test_id,
        annotator_id=a.annotator_id,
        status=a.status.value,
        started_at=a.started_at,
        deadline=a.deadline,
        finished_at=a.finished_at,
        score=a.score,
        passed=a.passed,
        late=a.late,
    )


# --- attempts (annotators) --------------------------------------------------------------------


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


def available_tests(session: Session, annotator_id: int) -> list[schemas.AvailableTest]:
    """Active tests with the annotator's standing in each (three queries)."""
    tests = list(
        session.scalars(
            select(QualificationTest)
            .where(QualificationTest.is_active.is_(True))
            .order_by(QualificationTest.id)
        )
    )
    attempts, grants = _attempts_and_grants(session, annotator_id, [t.id for t in tests])
    slugs = _skill_slugs(session, {t.skill_id for t in tests})
    now = utcnow()
    return [
        available_test(t, slugs[t.skill_id], standing(t, attempts[t.id], grants, now))
        for t in tests
    ]


def annotator_test(session: Session, annotator_id: int, test_id: int) -> schemas.AvailableTest:
    test = get_test_for_annotator(session, test_id)
    attempts, grants = _attempts_and_grants(session, annotator_id, [test.id])
    slug = _skill_slugs(session, {test.skill_id})[test.skill_id]
    return available_test(test, slug, standing(test, attempts[test.id], grants, utcnow()))


def available_test(test: QualificationTest, slug: str, s: TestStanding) -> schemas.AvailableTest:
    return schemas.AvailableTest(
        id=test.id,
        title=test.title,
        instructions=test.instructions,
        label_schema=test.label_schema,
        skill=slug,
        skill_level=test.skill_level,
        questions_per_attempt=test.questions_per_attempt,
        time_limit_seconds=test.time_limit_seconds,
        passing_score=test.passing_score,
        max_attempts=test.max_attempts,
        retake_cooldown_seconds=test.retake_cooldown_seconds,
        state=s.state,
        open_attempt_id=s.open_attempt_id,
        passed_until=s.passed_until,
        retake_after=s.retake_after,
        attempts_used=s.attempts_used,
        attempts_left=s.attempts_left,
        can_start=s.can_start,
    )


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
        messages = {
            "passed": "You have passed this test; its skill is in force",
            "revoked": "The skill this test granted you was revoked by an admin",
            "exhausted": "No attempts left at this test",
            "failed": "The retake cooldown is still running",
        }
        raise Conflict(
            messages.get(s.state, "You cannot start this test now"),
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
        raise Conflict("This test does not have enough questions yet")
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
            raise Conflict("Another start of this test just happened; try again") from None
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
        raise Conflict("This attempt is already graded")
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


def attempt_out(session: Session, attempt: QualificationAttempt) -> schemas.AttemptOut:
    """The annotator's view of an attempt: the questions' payloads, and once graded the score,
    the skill granted and (if the test shows feedback) per-question scores and explanations.
    Never an answer key."""
    test = session.get_one(QualificationTest, attempt.test_id)
    drawn = _attempt_questions(session, attempt.id)
    granted = None
    if attempt.passed:
        row = session.execute(
            select(SkillGrant, Skill.slug)
            .join(Skill, Skill.id == SkillGrant.skill_id)
            .where(SkillGrant.attempt_id == attempt.id)
        ).first()
        if row is not None:
            grant, slug = row
            granted = schemas.GrantedSkill(
                skill=slug, level=grant.level, expires_at=grant.expires_at
            )
    feedback = None
    if attempt.status is AttemptStatus.graded and test.show_feedback:
        feedback = [
            schemas.QuestionFeedback(
                question_id=q.id,
                position=aq.position,
                your_answer=aq.answer,
                score=aq.score or 0.0,
                correct=(aq.score or 0.0) >= CORRECT,
                explanation=q.explanation,
            )
            for aq, q in drawn
        ]
    return schemas.AttemptOut(
        id=attempt.id,
        test_id=attempt.test_id,
        status=attempt.status.value,
        started_at=attempt.started_at,
        deadline=attempt.deadline,
        finished_at=attempt.finished_at,
        questions=[
            schemas.AttemptQuestionOut(question_id=q.id, position=aq.position, payload=q.payload)
            for aq, q in drawn
        ],
        score=attempt.score,
        passed=attempt.passed,
        late=attempt.late,
        passing_score=test.passing_score,
        skill_granted=granted,
        feedback=feedback,
    )
