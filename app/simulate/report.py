"""The simulation's report: `report.json` (everything measured), `report.md` (the verdicts and
tables a person reads) and, when matplotlib is installed (the `plots` extra), PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SECONDS_PER_HOUR = 3600


def checks(report: dict[str, Any]) -> dict[str, bool]:
    """The market's promises, each true or false for this run (what `tessera simulate` exits on
    and the test asserts)."""
    jobs, pay = report["jobs"], report["pay"]
    floor = pay["floor_micros_per_hour"]
    return {
        "every job completed": all(j["completed"] for j in jobs),
        "no stall": not report["stalls"],
        "consensus at least as accurate as majority vote": all(
            j["consensus_accuracy"] is not None
            and j["consensus_accuracy"] >= j["majority_accuracy"]
            for j in jobs
        ),
        "every spammer and bot removed": report["removals"]["bad_removed"]
        == report["removals"]["bad_worked"]
        and not report["removals"]["bad_not_removed"],
        "no honest annotator removed": not report["removals"]["good_removed"],
        "every annotator paid at or above the floor": all(
            paid_at_floor(row, floor) for row in pay["annotators"]
        ),
        "ledger balanced": bool(report["ledger"]["balanced"]),
    }


def paid_at_floor(row: dict[str, Any], floor_micros_per_hour: int) -> bool:
    """Whether, on every job, approved work and top-ups paid at least the floor for the measured
    active time, to the micro (the ledger's unit: the floor for 7 s at 12.00/h is 23,333 micros,
    and the service owes it per job)."""
    return all(
        j["earned_micros"] + j["topup_micros"]
        >= floor_micros_per_hour * j["paid_seconds"] // SECONDS_PER_HOUR
        for j in row["jobs"]
    )


def write_report(report: dict[str, Any], directory: Path) -> list[Path]:
    """Write the report files into `directory`; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    report = {**report, "checks": checks(report)}
    written = [directory / "report.json", directory / "report.md"]
    written[0].write_text(json.dumps(report, indent=2, default=str) + "\n")
    written[1].write_text(markdown(report))
    written += _plots(report, directory)
    return written


def _money(micros: int | None) -> str:
    return "-" if micros is None else f"{micros / 1_000_000:,.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def markdown(report: dict[str, Any]) -> str:
    opts, verdicts = report["options"], report.get("checks") or checks(report)
    lines = [
        "# Tessera market simulation",
        "",
        f"Seed {opts['seed']}, {opts['annotators']} annotators, {opts['jobs']} jobs, "
        f"{opts['items']:,} items, {opts['clients']} clients, on {opts['database']}. "
        f"{report['simulated_seconds']:,.0f} s of simulated time in "
        f"{report['wall_seconds']:,.1f} s (wall clock); ended: {report['ended_by']}.",
        "",
        "## Verdicts",
        "",
        *[f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in verdicts.items()],
        "",
        "## Jobs",
        "",
        "| job | type | items (gold) | tasks done | completed after | consensus accuracy "
        "| majority vote |",
        "|---|---|---|---|---|---|---|",
    ]
    for j in report["jobs"]:
        done = "-" if j["seconds_to_complete"] is None else f"{j['seconds_to_complete']:,} s"
        lines.append(
            f"| {j['job_id']} | {j['task_type']} | {j['items']:,} ({j['gold']}) | "
            f"{j['complete_tasks']}/{j['tasks']} | {done} | {_pct(j['consensus_accuracy'])} | "
            f"{_pct(j['majority_accuracy'])} |"
        )
    lines += [
        "",
        "Accuracy is over the regular items, against the simulation's truth; majority vote is "
        "computed on the same answers as the export's (plurality label, labels chosen by more "
        "than half, the most frequent exact region set).",
        "",
        "## Stalls",
        "",
        "Open tasks while annotators who may work on the job idle and nothing completes for "
        "10 minutes of simulated time.",
        "",
    ]
    if not report["stalls"]:
        lines.append("None.")
    for s in report["stalls"]:
        lines.append(
            f"- job {s['job_id']}: from {s['from']} s to "
            f"{'the end' if s['to'] is None else str(s['to']) + ' s'}, {s['open_tasks']} open "
            f"tasks, {s['idle_annotators']} idle annotators; what they were told: "
            + "; ".join(
                f"{r['annotator']} eligible={r['eligible']} reasons={r['reasons']} "
                f"next={json.dumps(r['next'])}"
                for r in s["reasons"]
            )
        )
    removals = report["removals"]
    lines += [
        "",
        "## Spammers and bots",
        "",
        f"{removals['bad_removed']} of {removals['bad_total']} spammers and bots removed "
        f"({removals['bad_worked']} worked); honest annotators removed (false positives): "
        f"{', '.join(removals['good_removed']) or 'none'}; drifters removed: "
        f"{', '.join(removals['drifters_removed']) or 'none'}.",
        "",
        "| annotator | kind | removed from jobs | tasks submitted |",
        "|---|---|---|---|",
        *[
            f"| {r['annotator']} | {r['kind']} | {r['removed_from_jobs'] or '-'} | "
            f"{r['answers_submitted']} |"
            for r in removals["rows"]
        ],
        "",
        "## Pay",
        "",
        f"Floor {_money(report['pay']['floor_micros_per_hour'])}/h of measured active time.",
        "",
        "| annotator | kind | approved tasks | active s | earned (with top-ups) | top-ups "
        "| paid out | per hour | submit to paid (median s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["pay"]["annotators"]:
        wait = r["median_seconds_submit_to_paid"]
        lines.append(
            f"| {r['annotator']} | {r['kind']} | {r['approved_assignments']} | "
            f"{r['paid_seconds']:,} | {_money(r['earned_micros'])} | {_money(r['topup_micros'])} "
            f"| {_money(r['paid_micros'])} | {_money(r['hourly_micros'])} | "
            f"{'-' if wait is None else f'{wait:,.0f}'} |"
        )
    ledger, hooks, act = report["ledger"], report["webhooks"], report["activity"]
    lines += [
        "",
        "## Ledger",
        "",
        f"Trial balance {'balanced' if ledger['balanced'] else 'NOT balanced'}; totals "
        f"{ledger['totals_micros']}; unbalanced entries: {len(ledger['unbalanced_entries'])}.",
        "",
        "## Webhooks",
        "",
        f"{hooks['deliveries']} deliveries ({hooks['by_status']}), by event type "
        f"{hooks['by_event_type']}; the receiver got {hooks['received']} requests "
        f"({hooks['received_distinct']} distinct events, {hooks['bad_signatures']} with a bad "
        "signature).",
        "",
        "## Activity",
        "",
        f"{act['claims']:,} claims, {act['empty_next']:,} empty `next` answers, "
        f"{act['heartbeats']:,} heartbeats, {act['submits']:,} submits, "
        f"{act['abandoned_leases']} abandoned leases, reviews {act['reviews']}, "
        f"{act['appeals_filed']} appeals filed ({act['appeals']}), {act['api_calls']:,} API calls. "
        f"Submits refused: {len(act['refused_submits'])}. Wall time by phase: "
        f"{report.get('wall_seconds_by_phase')}.",
        "",
    ]
    return "\n".join(lines)


def _plots(report: dict[str, Any], directory: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    fig, ax = plt.subplots(figsize=(7, 4))
    totals = {j["job_id"]: j["tasks"] or 1 for j in report["jobs"]}
    for job_id in totals:
        points = [(t, done) for t, j, done in report["progress"] if j == job_id]
        if points:
            ax.step(
                [0] + [t / 60 for t, _ in points],
                [0] + [100 * d / totals[job_id] for _, d in points],
                where="post",
                label=f"job {job_id}",
            )
    ax.set_xlabel("simulated minutes")
    ax.set_ylabel("tasks complete (%)")
    ax.legend()
    fig.tight_layout()
    written.append(directory / "progress.png")
    fig.savefig(written[-1])
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    rates = [
        (r["hourly_micros"] / 1_000_000, r["kind"])
        for r in report["pay"]["annotators"]
        if r["hourly_micros"] is not None
    ]
    for kind in sorted({k for _, k in rates}):
        ax.hist([v for v, k in rates if k == kind], bins=20, alpha=0.6, label=kind)
    ax.axvline(report["pay"]["floor_micros_per_hour"] / 1_000_000, color="red", label="floor")
    ax.set_xlabel("effective pay per hour of measured active time")
    ax.set_ylabel("annotators")
    ax.legend()
    fig.tight_layout()
    written.append(directory / "pay.png")
    fig.savefig(written[-1])
    plt.close(fig)
    return written
