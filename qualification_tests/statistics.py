"""How a qualification test performs: pass rate, score distribution, per-question difficulty.

For authors tuning a test: a question almost nobody gets right often has a wrong key. Computed
from the attempts in two aggregate queries (plus the question list), whatever their number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.models.qualification import (
    AttemptQuestion,
    AttemptStatus,
    QualificationAttempt,
    QualificationQuestion,
    QualificationTest,
)
from qualification_tests.question_bank import list_questions

CORRECT = 0.999  # a question counts as answered correctly at this score or above


@dataclass(frozen=True)
class QuestionStatistics:
    question_id: int
    answered: int
    mean_score: float | None  # None until someone answered it
    share_correct: float | None
    retired: bool


@dataclass(frozen=True)
class TestStatistics:
    test_id: int
    attempts: int
    graded: int
    passed: int
    pass_rate: float | None  # None until an attempt is graded
    mean_score: float | None
    score_histogram: list[int]  # graded attempts per tenth of the score range
    questions: list[QuestionStatistics]


def statistics_of(session: Session, test: QualificationTest) -> TestStatistics:
    """Pass rate, score distribution and per-question difficulty of `test`. Late attempts count
    as graded attempts but not towards question difficulty (their questions went unanswered)."""
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
            QuestionStatistics(
                question_id=q.id,
                answered=answered,
                mean_score=float(mean) if mean is not None else None,
                share_correct=(int(correct or 0) / answered) if answered else None,
                retired=q.retired_at is not None,
            )
        )
    return TestStatistics(
        test_id=test.id,
        attempts=len(attempts),
        graded=len(graded),
        passed=passed,
        pass_rate=passed / len(graded) if graded else None,
        mean_score=math.fsum(s or 0.0 for s, _ in graded) / len(graded) if graded else None,
        score_histogram=histogram,
        questions=questions,
    )
