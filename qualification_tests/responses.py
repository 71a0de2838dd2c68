"""Response bodies (`schemas.*Out` and friends) built from what the services return.

The services decide and load; these functions only choose and rename fields for the API, so the
endpoints stay one call to a service plus one here. Nothing here may add an answer key to an
annotator's response: the annotator schemas have no field for one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.core.money import format_micros
from app.models.jobs import Job
from app.models.qualification import QualificationAttempt, QualificationTest, SkillGrant
from payouts.pricing import PayPreview
from payouts.schemas import PayOut
from qualification_tests import eligibility, schemas
from qualification_tests.annotators import Profile
from qualification_tests.attempts import AttemptView, TestForAnnotator
from qualification_tests.question_bank import active_question_counts
from qualification_tests.skills import skill_slugs
from qualification_tests.statistics import CORRECT, TestStatistics


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


def my_skill(grant: SkillGrant, slug: str) -> schemas.MySkill:
    return schemas.MySkill(
        skill=slug,
        level=grant.level,
        expires_at=grant.expires_at,
        scoped_to_client=grant.client_id is not None,
    )


def profile_out(profile: Profile) -> schemas.ProfileOut:
    return schemas.ProfileOut(
        annotator_id=profile.annotator_id,
        reputation=profile.reputation,
        tier=profile.tier,
        updated_at=profile.updated_at,
    )


def tests_out(session: Session, tests: Sequence[QualificationTest]) -> list[schemas.TestOut]:
    """Authors' view of tests (two queries for any number)."""
    active = active_question_counts(session, [t.id for t in tests])
    slugs = skill_slugs(session, {t.skill_id for t in tests})
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


def stats_out(statistics: TestStatistics) -> schemas.TestStats:
    return schemas.TestStats(
        test_id=statistics.test_id,
        attempts=statistics.attempts,
        graded=statistics.graded,
        passed=statistics.passed,
        pass_rate=statistics.pass_rate,
        mean_score=statistics.mean_score,
        score_histogram=statistics.score_histogram,
        questions=[
            schemas.QuestionStats(
                question_id=q.question_id,
                answered=q.answered,
                mean_score=q.mean_score,
                share_correct=q.share_correct,
                retired=q.retired,
            )
            for q in statistics.questions
        ],
    )


def attempt_summary(a: QualificationAttempt) -> schemas.AttemptSummary:
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


def available_test(view: TestForAnnotator) -> schemas.AvailableTest:
    test, s = view.test, view.standing
    return schemas.AvailableTest(
        id=test.id,
        title=test.title,
        instructions=test.instructions,
        label_schema=test.label_schema,
        skill=view.skill,
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


def attempt_out(view: AttemptView) -> schemas.AttemptOut:
    """The annotator's view of an attempt: the questions' payloads, and once graded the score,
    the skill granted and (if the test shows feedback) per-question scores and explanations.
    Never an answer key."""
    attempt = view.attempt
    granted = None
    if view.granted is not None:
        grant, slug = view.granted
        granted = schemas.GrantedSkill(skill=slug, level=grant.level, expires_at=grant.expires_at)
    feedback = None
    if view.show_feedback:
        feedback = [
            schemas.QuestionFeedback(
                question_id=q.id,
                position=aq.position,
                your_answer=aq.answer,
                score=aq.score or 0.0,
                correct=(aq.score or 0.0) >= CORRECT,
                explanation=q.explanation,
            )
            for aq, q in view.questions
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
            for aq, q in view.questions
        ],
        score=attempt.score,
        passed=attempt.passed,
        late=attempt.late,
        passing_score=view.passing_score,
        skill_granted=granted,
        feedback=feedback,
    )


def reasons_out(result: eligibility.Eligibility) -> list[schemas.ReasonOut]:
    return [
        schemas.ReasonOut(
            code=r.code,
            detail=r.detail,
            skill=r.skill,
            required=r.required,
            actual=r.actual,
            until=r.until,
        )
        for r in result.reasons
    ]


def annotator_job(
    job: Job, result: eligibility.Eligibility, pay: PayPreview
) -> schemas.AnnotatorJob:
    return schemas.AnnotatorJob(
        id=job.id,
        title=job.title,
        instructions=job.instructions,
        label_schema=job.label_schema,
        pricing={"rate_micros": job.rate_micros, "rate": format_micros(job.rate_micros)},
        pricing_mode=job.pricing_mode,
        items_per_task=job.items_per_task,
        lease_seconds=job.lease_seconds,
        deadline=job.deadline,
        required_skills=job.required_skills,
        min_reputation=job.min_reputation,
        min_tier=job.min_tier,
        max_tasks_per_annotator=job.max_tasks_per_annotator,
        pay=PayOut.model_validate(pay),
        eligible=result.eligible,
        reasons=reasons_out(result),
    )
