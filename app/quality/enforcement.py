"""Applying the rules' decisions (`rules`): writing the action rows with their evidence, banning
from the job, and undoing or confirming them when an admin says so.

Two paths write actions, and both only ever add what is not there yet:
- `enforce`, after each stats refresh, from the figures `tracking` just computed;
- `check_submit`, cheap enough for every submit, just after it commits: it reads the annotator's
  running counts on the job (`RuleCounters`, one row), advances them with the submit and applies
  `rules.decide_at_submit`. The submit flow calls it (or, on a raw-SQL store, the pure function
  with the same numbers).

Duplicates are prevented by the data: one fast-submit flag per assignment (a unique
constraint), no removal while one is in force or the annotator is banned from the job anyway,
identical-answer flags counted from the last one's last answer, and a suspension proposal only
while none is open or confirmed (and, after a dismissal, only at more removals than then).

A removal is a job ban (`qualification_tests.annotators.ban_from_job`) with the rule's reason,
made on behalf of the job's client: the rules are part of the job's settings. Reversing it lifts
that ban (and only that one) and restarts the gold-accuracy window, so the same evidence does
not remove the annotator again. A ban lifted by hand (the jobs' ban routes) reverses its
removal at the next refresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.accounts import service as accounts
from app.core.errors import NotFound
from app.core.pagination import PageParams, page_of, paginate
from app.core.settings import Settings
from app.jobs import service as jobs
from app.models.accounts import Role, User, UserStatus
from app.models.jobs import Answer, Assignment, Job
from app.models.qualification import JobBan
from app.models.quality import (
    ActionKind,
    ActionStatus,
    QualityAction,
    QualityRule,
    RuleCounters,
)
from app.quality import job_settings, rules, tracking
from app.quality.errors import ActionNotOpen
from app.quality.tracking import FINISHED, JobWork, Refreshed
from qualification_tests import annotators
from qualification_tests.schemas import BanCreate

IN_FORCE = (ActionStatus.open, ActionStatus.confirmed)
EVIDENCE_LIMIT = 200  # gold answers listed in a removal's evidence (the latest)


# --- after a refresh -----------------------------------------------------------------------------


def enforce(
    session: Session, settings: Settings, refreshed: Sequence[Refreshed], now: datetime
) -> list[QualityAction]:
    """Apply every rule to freshly refreshed annotators; returns the actions added."""
    added: list[QualityAction] = []
    for result in refreshed:
        annotator_id = result.annotator_id
        # A removal reversed here has a window the refresh did not know yet: judge that job's
        # gold again from the next refresh on.
        lifted = _reverse_removals_whose_ban_was_lifted(session, annotator_id, now)
        removed = _jobs_with_removal_in_force(session, annotator_id) | lifted
        banned = _jobs_banned_from(session, annotator_id, now)
        flagged = _fast_flagged_assignments(session, annotator_id)
        for job_id, work in sorted(result.jobs.items()):
            t = result.thresholds[job_id]
            if job_id not in removed and job_id not in banned:
                decision = rules.gold_removal(
                    work.window_gold_answers, work.window_gold_score_sum, t
                )
                if decision is not None:
                    added.append(_remove(session, annotator_id, job_id, decision, _gold(work), now))
            for run in work.long_runs:
                decision = rules.identical_run(run.length, t)
                if decision is not None:
                    evidence = {
                        "first_answer_id": run.first_answer_id,
                        "last_answer_id": run.last_answer_id,
                    }
                    added.append(
                        _record(session, annotator_id, job_id, None, decision, evidence, now)
                    )
            for fast in work.fast:
                decision = rules.fast_submit(fast.seconds, t.speed_floor_seconds)
                if decision is not None and fast.assignment_id not in flagged:
                    evidence = {"assignment_id": fast.assignment_id}
                    added.append(
                        _record(
                            session,
                            annotator_id,
                            job_id,
                            fast.assignment_id,
                            decision,
                            evidence,
                            now,
                        )
                    )
        proposal = _propose_suspension(session, settings, annotator_id, now)
        if proposal is not None:
            added.append(proposal)
    session.flush()
    return added


def _gold(work: JobWork) -> dict[str, Any]:
    return {
        "last_answer_id": work.last_answer_id,
        "window_after_answer_id": work.removal_window_after,
        "gold_answers": work.window_gold[-EVIDENCE_LIMIT:],
    }


def revisit_removals(
    session: Session,
    refreshed: Refreshed,
    job_id: int,
    *,
    admin_id: int,
    note: str,
    now: datetime,
) -> list[QualityAction]:
    """After an annotator's gold scores changed (an appeal re-scored or cleared one), reverse
    the removals in force on `job_id` that the gold-accuracy rule no longer supports."""
    work = refreshed.jobs.get(job_id)
    t = refreshed.thresholds.get(job_id)
    if work is None or t is None:
        return []
    if rules.gold_removal(work.window_gold_answers, work.window_gold_score_sum, t) is not None:
        return []
    reversed_ = []
    for action in session.scalars(
        select(QualityAction).where(
            QualityAction.annotator_id == refreshed.annotator_id,
            QualityAction.job_id == job_id,
            QualityAction.rule == QualityRule.gold_accuracy,
            QualityAction.status.in_(IN_FORCE),
        )
    ):
        reversed_.append(reverse_action(session, action, admin_id=admin_id, note=note, now=now))
    return reversed_


# --- at submit -----------------------------------------------------------------------------------


def check_submit(
    session: Session, settings: Settings, assignment_id: int, now: datetime
) -> list[QualityAction]:
    """The rules on one just-submitted assignment, once its submit has committed: reads the
    annotator's running counts on the job (one row, locked), advances them with this submit,
    and records the fast-submit and identical-answers flags and the removal
    `rules.decide_at_submit` asks for. Running it twice for one assignment changes nothing
    (nor does running it after a later submit of the same annotator on the job was counted:
    that one is left to the next refresh, which recounts everything). Returns the actions
    added."""
    assignment = session.get(Assignment, assignment_id)
    if assignment is None or assignment.status not in FINISHED or assignment.submitted_at is None:
        raise NotFound("No such submitted assignment")
    answers = list(
        session.execute(
            select(Answer.id, Answer.value, Answer.score)
            .where(Answer.assignment_id == assignment_id)
            .order_by(Answer.id)
        )
    )
    if not answers:
        return []
    # The counters row, created empty if missing, then locked: concurrent submits of one
    # annotator on one job advance it one after the other.
    key = (assignment.annotator_id, assignment.job_id)
    tracking.ensure_counters(session, *key, now=now)
    counters = session.get(RuleCounters, key, with_for_update=True, populate_existing=True)
    assert counters is not None
    if counters.last_answer_id >= answers[-1].id:
        return []  # counted already (by a refresh, or an earlier call)
    counts = rules.RunningCounts(
        counters.gold_answers,
        counters.gold_score_sum,
        rules.Run(counters.run_key, counters.run_length),
    )
    numbers = rules.SubmitNumbers(
        seconds=(assignment.submitted_at - assignment.claimed_at).total_seconds(),
        gold_scores=tuple(a.score for a in answers if a.score is not None),
        answer_keys=tuple(rules.answer_key(a.value) for a in answers),
    )
    t = job_settings.thresholds_for_jobs(session, settings, [assignment.job_id])[assignment.job_id]
    verdict = rules.decide_at_submit(numbers, counts, t)
    tracking.write_counters(
        session,
        assignment.annotator_id,
        assignment.job_id,
        gold_answers=verdict.counts.gold_answers,
        gold_score_sum=verdict.counts.gold_score_sum,
        run=verdict.counts.run,
        last_answer_id=answers[-1].id,
        now=now,
    )

    added = []
    annotator_id, job_id = assignment.annotator_id, assignment.job_id
    for decision in verdict.decisions:
        if decision.rule is QualityRule.fast_submit:
            if assignment_id not in _fast_flagged_assignments(session, annotator_id):
                evidence = {"assignment_id": assignment_id}
                added.append(
                    _record(session, annotator_id, job_id, assignment_id, decision, evidence, now)
                )
        elif decision.rule is QualityRule.identical_answers:
            slot = decision.slot or 0
            evidence = {"assignment_id": assignment_id, "last_answer_id": answers[slot].id}
            added.append(_record(session, annotator_id, job_id, None, decision, evidence, now))
        elif decision.rule is QualityRule.gold_accuracy and not (
            job_id in _jobs_with_removal_in_force(session, annotator_id)
            or job_id in _jobs_banned_from(session, annotator_id, now)
        ):
            window_after, gold = tracking.gold_window(session, annotator_id, job_id, EVIDENCE_LIMIT)
            removal_evidence: dict[str, Any] = {
                "last_answer_id": answers[-1].id,
                "window_after_answer_id": window_after,
                "gold_answers": gold,  # as the batch refresh records them
                "assignment_id": assignment_id,
            }
            added.append(_remove(session, annotator_id, job_id, decision, removal_evidence, now))
            proposal = _propose_suspension(session, settings, annotator_id, now)
            if proposal is not None:
                added.append(proposal)
    session.flush()
    return added


# --- an admin decides ----------------------------------------------------------------------------


def get_action(session: Session, action_id: int, *, lock: bool = False) -> QualityAction:
    action = session.get(QualityAction, action_id, with_for_update=lock)
    if action is None:
        raise NotFound("No such rule action")
    return action


def confirm_action(
    session: Session, action: QualityAction, *, admin_id: int, note: str, now: datetime
) -> QualityAction:
    """An admin agrees with an open action: a flag is acknowledged, a removal stays, a
    suspension proposal suspends the account (with the proposal's reason). 409
    `action-not-open` otherwise."""
    if action.status is not ActionStatus.open:
        raise ActionNotOpen(
            f"This action is {action.status.value}; only an open one can be confirmed",
            current_status=action.status.value,
        )
    if action.kind is ActionKind.suspension_proposal:
        suspend_account(
            session, user_id=action.annotator_id, reason=action.reason, admin_id=admin_id
        )
    _resolve(action, ActionStatus.confirmed, admin_id, note, now)
    session.flush()
    return action


def suspend_account(session: Session, *, user_id: int, reason: str, admin_id: int) -> User:
    """Suspend an account (`accounts.suspend_user`); a client's active jobs pause with it
    (reason `client_suspended`, resumed by an admin only) and its webhooks stop being sent
    until it is reactivated (`app.webhooks.attempts`)."""
    user = accounts.suspend_user(session, user_id=user_id, reason=reason, admin_id=admin_id)
    if user.role is Role.client:
        jobs.pause_jobs_of_suspended_client(session, user.id)
    return user


def reverse_action(
    session: Session, action: QualityAction, *, admin_id: int, note: str, now: datetime
) -> QualityAction:
    """An admin undoes an action (open or confirmed): a removal's ban is lifted and the gold
    window restarts; a confirmed suspension is lifted (if the account is still suspended for
    it); a flag or an open proposal is withdrawn. 409 `action-not-open` when already reversed."""
    if action.status is ActionStatus.reversed:
        raise ActionNotOpen("This action was reversed already", current_status="reversed")
    if action.kind is ActionKind.removal:
        ban = session.get(JobBan, action.ban_id, with_for_update=True) if action.ban_id else None
        if ban is not None and ban.lifted_at is None:
            ban.lifted_at, ban.lifted_by_id = now, admin_id
        assert action.job_id is not None
        counters = session.get(
            RuleCounters, (action.annotator_id, action.job_id), with_for_update=True
        )
        if counters is not None:
            counters.gold_answers, counters.gold_score_sum = 0, 0.0
    elif action.kind is ActionKind.suspension_proposal and action.status is ActionStatus.confirmed:
        user = accounts.get_user(session, action.annotator_id)
        if user.status is UserStatus.suspended and user.suspended_reason == action.reason:
            accounts.reactivate_user(session, user_id=user.id)
    _resolve(action, ActionStatus.reversed, admin_id, note, now)
    session.flush()
    return action


def _resolve(
    action: QualityAction, status: ActionStatus, admin_id: int | None, note: str, now: datetime
) -> None:
    action.status = status
    action.resolved_at, action.resolved_by_id, action.resolution = now, admin_id, note


# --- reading -------------------------------------------------------------------------------------


def list_actions(
    session: Session,
    params: PageParams,
    *,
    status: ActionStatus | None = ActionStatus.open,
    kind: ActionKind | None = None,
    rule: QualityRule | None = None,
    annotator_id: int | None = None,
) -> tuple[list[QualityAction], int | None]:
    """A page of actions, oldest first (the admin queues: open flags, removals, proposals)."""
    stmt = select(QualityAction)
    if status is not None:
        stmt = stmt.where(QualityAction.status == status)
    if kind is not None:
        stmt = stmt.where(QualityAction.kind == kind)
    if rule is not None:
        stmt = stmt.where(QualityAction.rule == rule)
    if annotator_id is not None:
        stmt = stmt.where(QualityAction.annotator_id == annotator_id)
    rows = list(session.scalars(paginate(stmt, QualityAction.id, params)))
    return page_of(rows, params, [a.id for a in rows])


def actions_of(session: Session, annotator_id: int, limit: int = 500) -> list[QualityAction]:
    """The latest `limit` actions about the annotator, newest first."""
    return list(
        session.scalars(
            select(QualityAction)
            .where(QualityAction.annotator_id == annotator_id)
            .order_by(QualityAction.id.desc())
            .limit(limit)
        )
    )


# --- writing actions -----------------------------------------------------------------------------


def _record(
    session: Session,
    annotator_id: int,
    job_id: int | None,
    assignment_id: int | None,
    decision: rules.Decision,
    evidence: dict[str, Any],
    now: datetime,
    ban_id: int | None = None,
) -> QualityAction:
    action = QualityAction(
        annotator_id=annotator_id,
        job_id=job_id,
        assignment_id=assignment_id,
        rule=decision.rule,
        kind=decision.kind,
        status=ActionStatus.open,
        reason=decision.reason,
        thresholds=decision.thresholds,
        numbers=decision.numbers,
        evidence=evidence,
        ban_id=ban_id,
        created_at=now,
    )
    session.add(action)  # flushed with the rest (queries autoflush)
    return action


def _remove(
    session: Session,
    annotator_id: int,
    job_id: int,
    decision: rules.Decision,
    evidence: dict[str, Any],
    now: datetime,
) -> QualityAction:
    job = session.get_one(Job, job_id)
    ban = annotators.ban_from_job(
        session,
        job,
        BanCreate(annotator_id=annotator_id, until=None, reason=decision.reason),
        by_id=job.client_id,
    )
    return _record(session, annotator_id, job_id, None, decision, evidence, now, ban_id=ban.id)


def _propose_suspension(
    session: Session, settings: Settings, annotator_id: int, now: datetime
) -> QualityAction | None:
    proposals = list(
        session.scalars(
            select(QualityAction).where(
                QualityAction.annotator_id == annotator_id,
                QualityAction.kind == ActionKind.suspension_proposal,
            )
        )
    )
    if any(p.status in IN_FORCE for p in proposals):
        return None
    dismissed_at = max((int(p.numbers.get("removals", 0)) for p in proposals), default=None)
    removals = session.scalar(
        select(func.count()).where(
            QualityAction.annotator_id == annotator_id,
            QualityAction.kind == ActionKind.removal,
            QualityAction.status.in_(IN_FORCE),
        )
    )
    decision = rules.suspension_proposal(
        int(removals or 0), dismissed_at, rules.Thresholds.platform(settings)
    )
    if decision is None:
        return None
    removal_ids = list(
        session.scalars(
            select(QualityAction.id).where(
                QualityAction.annotator_id == annotator_id,
                QualityAction.kind == ActionKind.removal,
                QualityAction.status.in_(IN_FORCE),
            )
        )
    )
    return _record(
        session, annotator_id, None, None, decision, {"removal_action_ids": removal_ids}, now
    )


def _reverse_removals_whose_ban_was_lifted(
    session: Session, annotator_id: int, now: datetime
) -> set[int]:
    """Reverse the removals whose ban was lifted by hand; returns their jobs."""
    jobs = set()
    for action, ban in session.execute(
        select(QualityAction, JobBan)
        .join(JobBan, JobBan.id == QualityAction.ban_id)
        .where(
            QualityAction.annotator_id == annotator_id,
            QualityAction.kind == ActionKind.removal,
            QualityAction.status.in_(IN_FORCE),
            JobBan.lifted_at.is_not(None),
        )
    ):
        _resolve(action, ActionStatus.reversed, ban.lifted_by_id, "The ban was lifted.", now)
        jobs.add(ban.job_id)
    return jobs


def _jobs_with_removal_in_force(session: Session, annotator_id: int) -> set[int]:
    return {
        job_id
        for job_id in session.scalars(
            select(QualityAction.job_id).where(
                QualityAction.annotator_id == annotator_id,
                QualityAction.kind == ActionKind.removal,
                QualityAction.status.in_(IN_FORCE),
            )
        )
        if job_id is not None
    }


def _jobs_banned_from(session: Session, annotator_id: int, now: datetime) -> set[int]:
    return set(
        session.scalars(
            select(JobBan.job_id).where(
                JobBan.annotator_id == annotator_id,
                JobBan.lifted_at.is_(None),
                or_(JobBan.until.is_(None), JobBan.until > now),
            )
        )
    )


def _fast_flagged_assignments(session: Session, annotator_id: int) -> set[int]:
    return {
        assignment_id
        for assignment_id in session.scalars(
            select(QualityAction.assignment_id).where(
                QualityAction.annotator_id == annotator_id,
                QualityAction.rule == QualityRule.fast_submit,
            )
        )
        if assignment_id is not None
    }
