"""HTTP for skills, grants, annotator profiles, qualification tests, attempts and job
eligibility. Annotator routes live under /v1/annotator and never return an answer key. (Job bans
are routes of the jobs package, /v1/jobs/{id}/bans, over `qualification_tests.annotators`.)"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select

from app.core.errors import NotFound, problem_responses
from app.core.inputs import Int64, ParamText, PathId
from app.core.security import (
    AdminPrincipal,
    AnnotatorPrincipal,
    ClientPrincipal,
    CurrentPrincipal,
    DbSession,
    ReadSession,
)
from app.core.settings import Settings
from app.models.jobs import Job, JobStatus
from app.models.qualification import Skill
from payouts import pay_shown
from qualification_tests import (
    annotators,
    attempts,
    eligibility,
    grants,
    question_bank,
    responses,
    schemas,
    skills,
    statistics,
)
from qualification_tests.errors import (
    AlreadyQualified,
    AttemptAlreadyGraded,
    AttemptLimitReached,
    ConcurrentStart,
    GrantAlreadyRevoked,
    NotEnoughQuestions,
    RetakeCooldown,
    SkillExists,
    SkillRevoked,
)

router = APIRouter(prefix="/v1")

MAX_JOBS_LISTED = 500


# --- skills (catalogue: admins manage, everyone reads) ----------------------------------------


@router.get("/skills", tags=["skills"], response_model=list[schemas.SkillOut])
def list_skills(_: CurrentPrincipal, session: ReadSession) -> list[schemas.SkillOut]:
    return [schemas.SkillOut.model_validate(s) for s in skills.list_skills(session)]


@router.post(
    "/admin/skills",
    tags=["admin"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.SkillOut,
    responses=problem_responses(SkillExists),
)
def create_skill(
    body: schemas.SkillCreate, _: AdminPrincipal, session: DbSession
) -> schemas.SkillOut:
    skill = skills.create_skill(session, body)
    session.commit()
    return schemas.SkillOut.model_validate(skill)


@router.patch("/admin/skills/{slug}", tags=["admin"], response_model=schemas.SkillOut)
def update_skill(
    slug: ParamText, body: schemas.SkillUpdate, _: AdminPrincipal, session: DbSession
) -> schemas.SkillOut:
    skill = skills.update_skill(session, skills.get_skill(session, slug), body)
    session.commit()
    return schemas.SkillOut.model_validate(skill)


# --- grants, profiles, attempt history (admins) -----------------------------------------------


@router.get(
    "/admin/annotators/{annotator_id}/skills",
    tags=["admin"],
    response_model=list[schemas.GrantOut],
)
def list_grants(
    annotator_id: PathId, _: AdminPrincipal, session: ReadSession
) -> list[schemas.GrantOut]:
    """Every grant of the annotator, revoked and expired ones included."""
    annotators.get_annotator(session, annotator_id)
    return [responses.grant_out(g, slug) for g, slug in grants.list_grants(session, annotator_id)]


@router.post(
    "/admin/annotators/{annotator_id}/skills",
    tags=["admin"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.GrantOut,
)
def grant_skill(
    annotator_id: PathId, body: schemas.GrantCreate, admin: AdminPrincipal, session: DbSession
) -> schemas.GrantOut:
    """Grant a skill level by hand, with a reason."""
    grant = grants.grant_skill(session, annotator_id, body, admin_id=admin.id)
    session.commit()
    return responses.grant_out(grant, body.skill)


@router.post(
    "/admin/skill-grants/{grant_id}/revoke",
    tags=["admin"],
    response_model=schemas.GrantOut,
    responses=problem_responses(GrantAlreadyRevoked),
)
def revoke_grant(
    grant_id: PathId, body: schemas.RevokeRequest, admin: AdminPrincipal, session: DbSession
) -> schemas.GrantOut:
    """Revoke a grant with a reason; it stays on record."""
    grant = grants.revoke_grant(session, grant_id, body.reason, admin_id=admin.id)
    slug = session.get_one(Skill, grant.skill_id).slug
    session.commit()
    return responses.grant_out(grant, slug)


@router.get(
    "/admin/annotators/{annotator_id}/profile", tags=["admin"], response_model=schemas.ProfileOut
)
def get_profile(
    annotator_id: PathId, _: AdminPrincipal, session: ReadSession
) -> schemas.ProfileOut:
    return responses.profile_out(annotators.get_profile(session, annotator_id))


@router.put(
    "/admin/annotators/{annotator_id}/profile", tags=["admin"], response_model=schemas.ProfileOut
)
def set_profile(
    annotator_id: PathId, body: schemas.ProfileUpdate, admin: AdminPrincipal, session: DbSession
) -> schemas.ProfileOut:
    """Set the annotator's reputation (0..1) and/or tier."""
    profile = annotators.set_profile(session, annotator_id, body, admin_id=admin.id)
    session.commit()
    return responses.profile_out(profile)


@router.get(
    "/admin/annotators/{annotator_id}/attempts",
    tags=["admin"],
    response_model=list[schemas.AttemptSummary],
)
def annotator_attempts(
    annotator_id: PathId, _: AdminPrincipal, session: ReadSession
) -> list[schemas.AttemptSummary]:
    """The annotator's qualification attempts at every test, newest first."""
    annotators.get_annotator(session, annotator_id)
    history = attempts.attempt_history(session, annotator_id=annotator_id)
    return [responses.attempt_summary(a) for a in history]


# --- tests (authors: admins make public tests, clients private ones) --------------------------


@router.post(
    "/qualification-tests",
    tags=["qualification tests"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.TestOut,
)
def create_test(
    body: schemas.TestCreate, author: ClientPrincipal, session: DbSession
) -> schemas.TestOut:
    """Create a test (admins: public; clients: private, its skill counts only for their jobs),
    optionally with its first questions."""
    test = question_bank.create_test(session, author, body)
    session.commit()
    return responses.tests_out(session, [test])[0]


@router.get(
    "/qualification-tests", tags=["qualification tests"], response_model=list[schemas.TestOut]
)
def list_tests(author: ClientPrincipal, session: ReadSession) -> list[schemas.TestOut]:
    """Admins: every test; clients: their own."""
    return responses.tests_out(session, question_bank.list_tests(session, author))


@router.get(
    "/qualification-tests/{test_id}", tags=["qualification tests"], response_model=schemas.TestOut
)
def get_test(test_id: PathId, author: ClientPrincipal, session: ReadSession) -> schemas.TestOut:
    return responses.tests_out(session, [question_bank.get_test(session, author, test_id)])[0]


@router.patch(
    "/qualification-tests/{test_id}",
    tags=["qualification tests"],
    response_model=schemas.TestOut,
)
def update_test(
    test_id: PathId, body: schemas.TestUpdate, author: ClientPrincipal, session: DbSession
) -> schemas.TestOut:
    test = question_bank.get_test(session, author, test_id, lock=True)
    question_bank.update_test(session, test, body)
    session.commit()
    return responses.tests_out(session, [test])[0]


@router.get(
    "/qualification-tests/{test_id}/questions",
    tags=["qualification tests"],
    response_model=list[schemas.QuestionOut],
)
def list_questions(
    test_id: PathId, author: ClientPrincipal, session: ReadSession
) -> list[schemas.QuestionOut]:
    """The question bank with answer keys (authors only)."""
    test = question_bank.get_test(session, author, test_id)
    questions = question_bank.list_questions(session, test)
    return [schemas.QuestionOut.model_validate(q) for q in questions]


@router.post(
    "/qualification-tests/{test_id}/questions",
    tags=["qualification tests"],
    status_code=status.HTTP_201_CREATED,
    response_model=list[schemas.QuestionOut],
)
def add_questions(
    test_id: PathId, body: schemas.QuestionsCreate, author: ClientPrincipal, session: DbSession
) -> list[schemas.QuestionOut]:
    """Add questions; every key is checked against the schema and its payload (all or none)."""
    test = question_bank.get_test(session, author, test_id, lock=True)
    rows = question_bank.add_questions(session, test, body.questions)
    session.commit()
    return [schemas.QuestionOut.model_validate(q) for q in rows]


@router.delete(
    "/qualification-tests/{test_id}/questions/{question_id}",
    tags=["qualification tests"],
    response_model=schemas.QuestionOut,
)
def retire_question(
    test_id: PathId, question_id: PathId, author: ClientPrincipal, session: DbSession
) -> schemas.QuestionOut:
    """Retire a question: no longer drawn, kept for past attempts and statistics."""
    test = question_bank.get_test(session, author, test_id)
    question = question_bank.retire_question(session, test, question_id)
    session.commit()
    return schemas.QuestionOut.model_validate(question)


@router.get(
    "/qualification-tests/{test_id}/stats",
    tags=["qualification tests"],
    response_model=schemas.TestStats,
)
def get_stats(test_id: PathId, author: ClientPrincipal, session: ReadSession) -> schemas.TestStats:
    """Pass rate, score distribution and per-question difficulty."""
    test = question_bank.get_test(session, author, test_id)
    return responses.stats_out(statistics.statistics_of(session, test))


@router.get(
    "/qualification-tests/{test_id}/attempts",
    tags=["qualification tests"],
    response_model=list[schemas.AttemptSummary],
)
def list_test_attempts(
    test_id: PathId,
    author: ClientPrincipal,
    session: ReadSession,
    annotator_id: Int64 | None = None,
) -> list[schemas.AttemptSummary]:
    """Attempts at the test, newest first; `annotator_id` narrows to one annotator's history."""
    test = question_bank.get_test(session, author, test_id)
    history = attempts.attempt_history(session, test_id=test.id, annotator_id=annotator_id)
    return [responses.attempt_summary(a) for a in history]


# --- annotators: tests, attempts, skills, jobs ------------------------------------------------


@router.get(
    "/annotator/qualification-tests",
    tags=["annotator"],
    response_model=list[schemas.AvailableTest],
)
def available_tests(
    annotator: AnnotatorPrincipal, session: ReadSession
) -> list[schemas.AvailableTest]:
    """Tests you can take, with where you stand in each (never taken, passed until …, failed —
    retake after …, attempts left)."""
    return [responses.available_test(t) for t in attempts.available_tests(session, annotator.id)]


@router.get(
    "/annotator/qualification-tests/{test_id}",
    tags=["annotator"],
    response_model=schemas.AvailableTest,
)
def available_test(
    test_id: PathId, annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.AvailableTest:
    return responses.available_test(attempts.annotator_test(session, annotator.id, test_id))


@router.post(
    "/annotator/qualification-tests/{test_id}/attempts",
    tags=["annotator"],
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.AttemptOut,
    responses={
        200: {"description": "An attempt is already open: that one is returned"},
        **problem_responses(
            AlreadyQualified,
            SkillRevoked,
            AttemptLimitReached,
            (RetakeCooldown, "the last attempt failed; `retake_after` says when to retry"),
            NotEnoughQuestions,
            ConcurrentStart,
        ),
    },
)
def start_attempt(
    test_id: PathId, annotator: AnnotatorPrincipal, session: DbSession, response: Response
) -> schemas.AttemptOut:
    """Start an attempt: the server draws the questions and fixes the deadline."""
    attempt, created = attempts.start_attempt(session, annotator.id, test_id)
    session.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return responses.attempt_out(attempts.attempt_view(session, attempt))


@router.get("/annotator/attempts", tags=["annotator"], response_model=list[schemas.AttemptSummary])
def my_attempts(
    annotator: AnnotatorPrincipal, session: ReadSession
) -> list[schemas.AttemptSummary]:
    history = attempts.attempt_history(session, annotator_id=annotator.id)
    return [responses.attempt_summary(a) for a in history]


@router.get(
    "/annotator/attempts/{attempt_id}", tags=["annotator"], response_model=schemas.AttemptOut
)
def get_attempt(
    attempt_id: PathId, annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.AttemptOut:
    """An attempt: its questions, and once graded its result."""
    attempt = attempts.get_attempt(session, annotator.id, attempt_id)
    return responses.attempt_out(attempts.attempt_view(session, attempt))


@router.post(
    "/annotator/attempts/{attempt_id}/submit",
    tags=["annotator"],
    response_model=schemas.AttemptOut,
    responses=problem_responses(AttemptAlreadyGraded),
)
def submit_attempt(
    attempt_id: PathId,
    body: schemas.SubmitRequest,
    annotator: AnnotatorPrincipal,
    session: DbSession,
) -> schemas.AttemptOut:
    """Submit answers (`[{question_id, answer}]`); the result comes back at once."""
    attempt = attempts.submit_attempt(session, annotator.id, attempt_id, body.answers)
    session.commit()
    return responses.attempt_out(attempts.attempt_view(session, attempt))


@router.get("/annotator/skills", tags=["annotator"], response_model=list[schemas.MySkill])
def my_skills(annotator: AnnotatorPrincipal, session: ReadSession) -> list[schemas.MySkill]:
    """Your skills in force."""
    return [
        responses.my_skill(g, slug) for g, slug in grants.grants_in_force(session, annotator.id)
    ]


@router.get("/annotator/jobs", tags=["annotator"], response_model=list[schemas.AnnotatorJob])
def annotator_jobs(
    request: Request,
    annotator: AnnotatorPrincipal,
    session: ReadSession,
    eligible_only: bool = False,
) -> list[schemas.AnnotatorJob]:
    """Active jobs with your eligibility and, where you are not eligible, every reason why
    (highest priority first), each with what a task pays you: base × your tier's multiplier
    (or the hourly rate), the gold bonus, the job's median active seconds so far, the hourly
    rate that implies and the fair-pay floor."""
    settings: Settings = request.app.state.settings
    active = list(
        session.scalars(
            select(Job)
            .where(Job.status == JobStatus.active)
            .order_by(Job.priority.desc(), Job.id)
            .limit(MAX_JOBS_LISTED)
        )
    )
    results = eligibility.explain_eligibility_for_jobs(session, annotator.id, active)
    medians = pay_shown.medians_for(session, [job.id for job in active], settings)
    return [
        responses.annotator_job(
            job,
            results[job.id],
            pay_shown.preview(job, results[job.id].tier, medians[job.id], settings),
        )
        for job in active
        if results[job.id].eligible or not eligible_only
    ]


@router.get(
    "/annotator/jobs/{job_id}/eligibility",
    tags=["annotator"],
    response_model=schemas.EligibilityOut,
)
def job_eligibility(
    job_id: PathId, annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.EligibilityOut:
    """Whether you may work on this job, and every reason if not. Drafts are not visible (404)."""
    job = session.get(Job, job_id)
    if job is None or job.status is JobStatus.draft:
        raise NotFound("No such job")
    result = eligibility.explain_eligibility(session, annotator.id, job)
    return schemas.EligibilityOut(
        job_id=job.id, eligible=result.eligible, reasons=responses.reasons_out(result)
    )
