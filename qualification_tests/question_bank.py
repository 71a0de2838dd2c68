"""Qualification tests and their question banks, as their authors manage them.

Visibility: public tests (no `client_id`) are the admins'; a client's private test is visible to
that client and to admins only (404 for everyone else). Answer keys live here and are only ever
returned to authors; what annotators see of a test is `qualification_tests.attempts`. Every key
is checked against the test's label schema and its question's payload before it is stored, and
graded against itself, so a key the grader cannot score never enters the bank. Services flush,
never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.clock import utcnow
from app.core.errors import NotFound, ValidationFailed
from app.core.security import Principal
from app.label_schema import LabelSchema, parse_label_schema_at, required_fields, validate_answer
from app.label_schema.grading import grade_answer
from app.models.accounts import Role
from app.models.qualification import QualificationQuestion, QualificationTest, Skill
from qualification_tests import schemas


def schema_of(test: QualificationTest) -> LabelSchema:
    """The test's label schema as a model (stored documents were validated on the way in)."""
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
    """The skill a request body names; 422 at `#/skill` when there is none."""
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
    """Apply a partial update of the test's settings (its schema and skill never change)."""
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
    """The whole bank of `test`, retired questions too, oldest first, with keys (authors only)."""
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


def active_question_counts(session: Session, test_ids: Sequence[int]) -> dict[int, int]:
    """Questions not retired, by test id (tests without any are left out); one query."""
    return dict(
        session.execute(
            select(QualificationQuestion.test_id, func.count())
            .where(
                QualificationQuestion.test_id.in_(test_ids),
                QualificationQuestion.retired_at.is_(None),
            )
            .group_by(QualificationQuestion.test_id)
        ).all()
    )
