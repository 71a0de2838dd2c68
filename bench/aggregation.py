"""Benchmark: label aggregation on real crowds and on 1,000,000 synthetic labels, crowd-kit beside
ours in the same run.

    pip install -e '.[reference]'        # crowd-kit, for the reference columns (optional)
    python bench/aggregation.py          # everything; --help for the parts

1. Real crowd sets (../shared/data/crowd, read in place, never copied): accuracy on gold and
   expected calibration error (15 bins) per method, in two settings. "Blind": no method sees any
   gold, every gold item is scored (crowd-kit's own setting). "10% gold": the setting jobs run in,
   where a tenth of the items are gold: gold items are split into 10 folds and each fold is
   predicted with only the next fold's gold given (clamped, and fitting our temperature), the
   figures averaged over 3 random draws of the folds;
   crowd-kit's DawidSkene gets the same gold (`true_labels`), its other methods cannot use gold,
   so their figures are the blind ones. Also per set: the Spearman correlation of each method's
   annotator skill estimate (blind) with the annotator's accuracy on gold, over annotators with
   at least 20 gold answers.
2. Synthetic: 200k items × 5 answers from 2,000 annotators, 4 labels (app.consensus.simulation:
   workers, 10% spammers, 5% adversaries). Each method runs in its own subprocess, so each peak
   RSS is its own: seconds of fitting (loading excluded), peak RSS of the process, RSS once the
   input is loaded, and accuracy on the items that are not gold (the calibrated method gets 1% of
   the items as gold, and runs once more without any: "calibrated_dawid_skene (no gold)", its
   gold-free calibration; everything else is blind). crowd-kit gets its input as integer
   columns, its cheapest form.
3. Fallback: Dawid-Skene against the weighted vote as annotators answer more (synthetic, 200
   annotators), the measurement behind `app.consensus.methods.answers_needed`.

Prints tables and, last, one JSON line with every figure. Targets (issue 12): the job default
within 0.3 points of the best crowd-kit method on every set and an ECE no worse than crowd-kit's
best-calibrated method's; our Dawid-Skene at most 0.5x crowd-kit's time and peak memory at equal
accuracy (±0.5 points).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.consensus.calibrated_dawid_skene import CalibratedDawidSkene  # noqa: E402
from app.consensus.dawid_skene import DawidSkene  # noqa: E402
from app.consensus.evaluation import (  # noqa: E402
    annotator_gold_accuracy,
    cross_fitted,
    score_on_gold,
)
from app.consensus.majority_vote import MajorityVote  # noqa: E402
from app.consensus.methods import DEFAULT_METHOD, answers_needed  # noqa: E402
from app.consensus.offline import read_gold, read_labels  # noqa: E402
from app.consensus.simulation import synthetic_crowd  # noqa: E402
from app.consensus.votes import NO_LABEL, IntArray, VoteEncoder, Votes  # noqa: E402
from app.consensus.weighted_vote import WeightedVote  # noqa: E402
from bench.lodo import Scores, leave_one_dataset_out, print_lodo, score  # noqa: E402

CROWD_DIR = Path(os.environ.get("TESSERA_CROWD_DATA", ROOT.parent / "shared" / "data" / "crowd"))
SETS = ("rte", "temp", "product", "dog")
LODO_SETS = (
    *SETS,
    "cf_weather",
    "music",
    "sentiment_polarity",
    "zencrowd_us",
    "tweet_sentiment",
)
MIN_GOLD_ANSWERS = 20  # annotators in the skill/accuracy correlation

OURS: dict[str, Callable[[], Any]] = {
    "majority_vote": MajorityVote,
    "weighted_vote": WeightedVote,
    "dawid_skene": DawidSkene,
    "calibrated_dawid_skene": CalibratedDawidSkene,
}
CROWD_KIT = ("MajorityVote", "Wawa", "DawidSkene", "GLAD")
LODO_CROWD_KIT = ("MajorityVote", "Wawa", "ZeroBasedSkill", "DawidSkene", "GLAD", "MACE")
NO_GOLD = " (no gold)"  # the synthetic run's default method once more, without its 1% of gold


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_mb() -> float:
    # The high-water mark of this process's own memory. Not getrusage's ru_maxrss: on Linux that
    # carries over the parent's RSS at fork (here, the generated crowd) into the child.
    return _status_mb("VmHWM")


def current_rss_mb() -> float:
    return _status_mb("VmRSS")


# --- crowd-kit as one of ours: fit(votes, gold) -> labels_, confidence_, skills_ -----------------


def crowd_kit_available() -> bool:
    try:
        import crowdkit  # noqa: F401
    except ImportError:
        return False
    return True


class CrowdKit:
    """A crowd-kit estimator behind our interface (integer-coded votes in, arrays out)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fit(self, votes: Votes, gold: IntArray | None = None) -> CrowdKit:
        import crowdkit.aggregation as ck
        import pandas as pd

        frame = pd.DataFrame(
            {"task": votes.items, "worker": votes.annotators, "label": votes.labels}
        )
        model = getattr(ck, self.name)()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            known = np.flatnonzero(gold != NO_LABEL) if gold is not None else np.empty(0, int)
            if self.name == "DawidSkene" and known.size:
                model.fit(frame, true_labels=pd.Series(gold[known], index=known))
            elif self.name in ("Wawa", "ZeroBasedSkill"):  # their probas come from predict_proba
                model.fit(frame).predict_proba(frame)
            else:
                model.fit(frame)
        probas = model.probas_.reindex(index=range(votes.n_items), columns=range(votes.n_labels))
        self.probas_ = probas.fillna(0.0).to_numpy()
        labels = model.labels_.reindex(range(votes.n_items))
        self.labels_ = labels.fillna(NO_LABEL).to_numpy().astype(np.int64)
        rows = np.flatnonzero(self.labels_ != NO_LABEL)
        self.confidence_ = np.zeros(votes.n_items)
        self.confidence_[rows] = self.probas_[rows, self.labels_[rows]]
        self.skills_ = self._skills(model, votes)
        return self

    def _skills(self, model: Any, votes: Votes) -> np.ndarray:
        if self.name == "DawidSkene":
            # errors_[worker, observed][true]: the probability of a right answer, Σ_k p_k e[k, k].
            cells = model.errors_.stack()
            cells.index = cells.index.set_names(["worker", "observed", "truth"])
            frame = cells.reset_index(name="p")
            right = frame[frame["observed"] == frame["truth"]]
            weighted = right["p"] * right["truth"].map(model.priors_)
            skill = weighted.groupby(right["worker"]).sum().to_dict()
        elif self.name == "GLAD":
            skill = model.alphas_.to_dict()  # ability; only its ranking is used
        elif self.name == "MACE":
            # The posterior probability of not spamming, in order of first appearance (MACE
            # numbers workers with pandas.factorize).
            import pandas as pd

            _, workers = pd.factorize(pd.Series(votes.annotators))
            skill = dict(zip(workers.tolist(), model.spamming_[:, 1].tolist(), strict=True))
        else:
            skill = model.skills_.to_dict()
        return np.array([skill.get(a, np.nan) for a in range(votes.n_annotators)], dtype=float)


# --- 1. real crowd sets --------------------------------------------------------------------------


def load_set(folder: Path) -> tuple[Votes, IntArray]:
    answers = read_labels(folder / "labels.csv")
    encoder: VoteEncoder[str, str] = VoteEncoder(sorted({r[2] for r in answers.rows}, key=int))
    votes = encoder.encode(answers.rows)
    return votes, encoder.encode_gold(read_gold(folder / "gold.csv"))


def spearman(skills: np.ndarray, accuracy: np.ndarray, graded: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    keep = (graded >= MIN_GOLD_ANSWERS) & ~np.isnan(skills)
    if keep.sum() < 3:
        return None
    return round(float(spearmanr(skills[keep], accuracy[keep]).statistic), 3)


def bench_set(name: str, folder: Path, reference: bool, folds: int, repeats: int) -> dict[str, Any]:
    votes, gold = load_set(folder)
    accuracy, graded = annotator_gold_accuracy(votes, gold)
    methods: dict[str, Callable[[], Any]] = dict(OURS)
    if reference:
        methods |= {f"crowd-kit {n}": (lambda n=n: CrowdKit(n)) for n in CROWD_KIT}
    out: dict[str, Any] = {
        "items": votes.n_items,
        "annotators": votes.n_annotators,
        "labels": votes.size,
        "annotators_with_20_gold": int((graded >= MIN_GOLD_ANSWERS).sum()),
        "methods": {},
    }
    for method, make in methods.items():
        started = time.perf_counter()
        blind = make().fit(votes)
        seconds = time.perf_counter() - started
        blind_score = score_on_gold(blind.labels_, blind.confidence_, gold)
        uses_gold = not method.startswith("crowd-kit") or method == "crowd-kit DawidSkene"
        if uses_gold:
            scores = []
            for repeat in range(repeats):
                labels, confidence = cross_fitted(
                    votes,
                    gold,
                    lambda v, g, make=make: make().fit(v, g),
                    folds=folds,
                    known="next",
                    seed=repeat,
                )
                scores.append(score_on_gold(labels, confidence, gold))
            gold_accuracy = float(np.mean([s.accuracy for s in scores]))
            gold_ece = float(np.mean([s.ece for s in scores]))
        else:  # cannot use gold: the same predictions
            gold_accuracy, gold_ece = blind_score.accuracy, blind_score.ece
        out["methods"][method] = {
            "blind_accuracy": round(100 * blind_score.accuracy, 2),
            "blind_ece": round(blind_score.ece, 4),
            "gold10_accuracy": round(100 * gold_accuracy, 2),
            "gold10_ece": round(gold_ece, 4),
            "seconds": round(seconds, 3),
            "spearman": spearman(blind.skills_, accuracy, graded),
        }
    return out


def targets(report: dict[str, Any]) -> dict[str, Any]:
    """Per set and setting: the default method against crowd-kit's best."""
    checks: dict[str, Any] = {}
    for name, result in report.items():
        methods = result["methods"]
        ck = {m: f for m, f in methods.items() if m.startswith("crowd-kit")}
        if not ck:
            continue
        ours = methods[str(DEFAULT_METHOD)]
        for setting in ("blind", "gold10"):
            best_accuracy = max(f[f"{setting}_accuracy"] for f in ck.values())
            best_ece = min(f[f"{setting}_ece"] for f in ck.values())
            checks[f"{name}/{setting}"] = {
                "accuracy_gap": round(ours[f"{setting}_accuracy"] - best_accuracy, 2),
                "accuracy_ok": ours[f"{setting}_accuracy"] >= best_accuracy - 0.3,
                "ece": ours[f"{setting}_ece"],
                "best_crowd_kit_ece": best_ece,
                "ece_ok": ours[f"{setting}_ece"] <= best_ece,
            }
    return checks


# --- 1b. leave-one-dataset-out (bench/lodo.py) ---------------------------------------------------


def bench_lodo(
    crowd_dir: Path, sets: list[str], reference: bool, glad_limit: int
) -> dict[str, Any]:
    """Every set blind; crowd-kit's methods on each (GLAD only up to `glad_limit` labels: it
    takes minutes beyond); our choices made on the other sets (bench/lodo.py)."""
    loaded: dict[str, Any] = {}
    theirs: dict[str, dict[str, Scores]] = {}
    for name in sets:
        votes, gold = load_set(crowd_dir / name)
        accuracy, graded = annotator_gold_accuracy(votes, gold)

        def rho(
            skills: np.ndarray, accuracy: np.ndarray = accuracy, graded: np.ndarray = graded
        ) -> float | None:
            return spearman(skills, accuracy, graded)

        loaded[name] = (votes, gold, rho)
        theirs[name] = {}
        for method in LODO_CROWD_KIT if reference else ():
            if method == "GLAD" and votes.size > glad_limit:
                continue
            fitted = CrowdKit(method).fit(votes)
            theirs[name][method] = score(
                fitted.labels_, fitted.confidence_, fitted.skills_, gold, rho
            )
    return leave_one_dataset_out(loaded, theirs)


# --- 2. synthetic, one subprocess per method -----------------------------------------------------


def phase_synthetic(method: str, path: str) -> dict[str, Any]:
    data = np.load(path)
    n_labels = int(data["n_labels"])
    votes = Votes(
        data["items"], data["annotators"], data["labels"],
        int(data["n_items"]), int(data["n_annotators"]), n_labels,
    )  # fmt: skip
    truth, gold = data["truth"], data["gold"]
    estimator = (
        CrowdKit(method.removeprefix("crowd-kit "))
        if method.startswith("crowd-kit")
        else (OURS[method.removesuffix(NO_GOLD)]())
    )
    if method.startswith("crowd-kit"):
        import crowdkit.aggregation  # noqa: F401  (imported before the clock starts, like ours)
        import pandas  # noqa: F401
    loaded = current_rss_mb()
    started = time.perf_counter()
    estimator.fit(votes, gold if method == "calibrated_dawid_skene" else None)
    seconds = time.perf_counter() - started
    unseen = gold == NO_LABEL
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "loaded_rss_mb": round(loaded, 1),
        "accuracy": round(100 * float((estimator.labels_[unseen] == truth[unseen]).mean()), 2),
    }


def run_phase(timeout: float | None, *args: str) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, __file__, "--phase", *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"timeout_seconds": timeout}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def bench_synthetic(
    n_items: int, reference: bool, glad_timeout: float, workdir: Path
) -> dict[str, Any]:
    crowd = synthetic_crowd(n_items, 2000, 4, 5, seed=12)
    gold = np.full(n_items, NO_LABEL)
    chosen = np.random.default_rng(12).random(n_items) < 0.01
    gold[chosen] = crowd.truth[chosen]
    path = workdir / "synthetic.npz"
    v = crowd.votes
    np.savez(
        path, items=v.items, annotators=v.annotators, labels=v.labels, n_items=v.n_items,
        n_annotators=v.n_annotators, n_labels=v.n_labels, truth=crowd.truth, gold=gold,
    )  # fmt: skip
    methods = [*OURS, f"calibrated_dawid_skene{NO_GOLD}"]
    methods += [f"crowd-kit {n}" for n in CROWD_KIT] if reference else []
    out: dict[str, Any] = {"labels": v.size, "items": n_items, "annotators": 2000, "methods": {}}
    for method in methods:
        timeout = glad_timeout if method == "crowd-kit GLAD" else None
        out["methods"][method] = run_phase(timeout, "synthetic", method, str(path))
    theirs = out["methods"].get("crowd-kit DawidSkene")
    if theirs and "seconds" in theirs:
        for key, method in RATIOS.items():
            ours = out["methods"][method]
            out[key] = {
                "time_ratio": round(ours["seconds"] / theirs["seconds"], 3),
                "peak_rss_ratio": round(ours["peak_rss_mb"] / theirs["peak_rss_mb"], 3),
                "accuracy_gap": round(ours["accuracy"] - theirs["accuracy"], 2),
            }
    return out


# Ours against crowd-kit's DawidSkene on the synthetic run: the target (issue 12) is our
# Dawid-Skene; the default without gold (its calibration's extra pass) is held to it too.
RATIOS = {
    "dawid_skene_vs_crowd_kit": "dawid_skene",
    "default_no_gold_vs_crowd_kit": f"calibrated_dawid_skene{NO_GOLD}",
}


# --- 3. fallback: Dawid-Skene against the weighted vote as annotators answer more ---------------


def bench_fallback() -> list[dict[str, Any]]:
    rows = []
    for n_labels in (2, 4):
        for per_annotator in (5, 10, 20, 40, 80):
            figures = []
            for seed in range(4):
                crowd = synthetic_crowd(per_annotator * 40, 200, n_labels, 5, seed=seed)
                ds = DawidSkene().fit(crowd.votes)
                wv = WeightedVote().fit(crowd.votes)
                answers = crowd.votes.answers_per_annotator()[crowd.votes.annotators]
                figures.append(
                    (
                        (ds.labels_ == crowd.truth).mean(),
                        (wv.labels_ == crowd.truth).mean(),
                        np.median(answers),
                        (answers >= answers_needed(n_labels)).mean(),
                    )
                )
            ds_acc, wv_acc, median, share = np.mean(figures, axis=0)
            rows.append(
                {
                    "labels": n_labels,
                    "mean_answers_per_annotator": per_annotator,
                    "median_vote_annotator_answers": int(median),
                    "dawid_skene": round(100 * ds_acc, 2),
                    "weighted_vote": round(100 * wv_acc, 2),
                    "rule_picks": "dawid_skene" if share > 0.5 else "weighted_vote",
                }
            )
    return rows


# --- driver ---------------------------------------------------------------------------------------


def print_tables(report: dict[str, Any]) -> None:
    if "real" in report:
        print("Real crowd sets: accuracy on gold (%) and ECE (15 bins); seconds of the blind fit;")
        print(f"Spearman(skill, gold accuracy) over annotators with >= {MIN_GOLD_ANSWERS} gold")
        head = f"{'set':<8}{'method':<25}{'blind acc':>10}{'ECE':>8}{'10% gold acc':>13}{'ECE':>8}"
        print(head + f"{'seconds':>9}{'Spearman':>10}")
        for name, result in report["real"].items():
            for method, f in result["methods"].items():
                rho = "" if f["spearman"] is None else f"{f['spearman']:.3f}"
                print(
                    f"{name:<8}{method:<25}{f['blind_accuracy']:>10.2f}{f['blind_ece']:>8.4f}"
                    f"{f['gold10_accuracy']:>13.2f}{f['gold10_ece']:>8.4f}{f['seconds']:>9.3f}"
                    f"{rho:>10}"
                )
        for key, check in report.get("targets", {}).items():
            print(
                f"target {key:<16} {DEFAULT_METHOD}: accuracy {check['accuracy_gap']:+.2f} vs "
                f"crowd-kit's best ({'ok' if check['accuracy_ok'] else 'MISSED'}); ECE "
                f"{check['ece']:.4f} vs {check['best_crowd_kit_ece']:.4f} "
                f"({'ok' if check['ece_ok'] else 'MISSED'})"
            )
    if "lodo" in report:
        print_lodo(report["lodo"])
    if "synthetic" in report:
        s = report["synthetic"]
        print(
            f"\nSynthetic: {s['labels']:,} labels, {s['items']:,} items, "
            f"{s['annotators']:,} annotators, 4 labels"
        )
        print(f"{'method':<34}{'seconds':>9}{'peak RSS MB':>13}{'loaded MB':>11}{'accuracy':>10}")
        for method, f in s["methods"].items():
            if "timeout_seconds" in f:
                print(f"{method:<34}  stopped after {f['timeout_seconds']:.0f} s")
                continue
            print(
                f"{method:<34}{f['seconds']:>9.2f}{f['peak_rss_mb']:>13.1f}"
                f"{f['loaded_rss_mb']:>11.1f}{f['accuracy']:>10.2f}"
            )
        for key, method in RATIOS.items():
            if key in s:
                r = s[key]
                print(
                    f"{method} / crowd-kit's DawidSkene: time {r['time_ratio']:.3f}x, peak RSS "
                    f"{r['peak_rss_ratio']:.3f}x, accuracy {r['accuracy_gap']:+.2f} points"
                )
    if "fallback" in report:
        print("\nFallback: accuracy (%) by answers per annotator (synthetic, 200 annotators)")
        print(
            f"{'labels':>6}{'mean':>6}{'median vote':>13}{'Dawid-Skene':>13}{'weighted':>10}  rule"
        )
        for row in report["fallback"]:
            print(
                f"{row['labels']:>6}{row['mean_answers_per_annotator']:>6}"
                f"{row['median_vote_annotator_answers']:>13}{row['dawid_skene']:>13.2f}"
                f"{row['weighted_vote']:>10.2f}  {row['rule_picks']}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crowd-dir", type=Path, default=CROWD_DIR)
    parser.add_argument("--sets", nargs="+", default=list(SETS))
    parser.add_argument("--folds", type=int, default=10, help="gold folds (10: 10%% gold)")
    parser.add_argument("--repeats", type=int, default=3, help="draws of the gold folds")
    parser.add_argument("--synthetic-items", type=int, default=200_000)
    parser.add_argument("--glad-timeout", type=float, default=900.0)
    parser.add_argument("--lodo-sets", nargs="+", default=list(LODO_SETS))
    parser.add_argument("--glad-limit", type=int, default=12_000, help="labels; GLAD above: no")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["real", "lodo", "synthetic", "fallback"]
    )
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase_synthetic(*args.phase[1:])))
        return

    reference = crowd_kit_available()
    report: dict[str, Any] = {"crowd_kit": reference}
    if reference:
        import crowdkit
        import pandas

        report["versions"] = {"crowd-kit": crowdkit.__version__, "pandas": pandas.__version__}
    if "real" not in args.skip:
        report["real"] = {
            name: bench_set(name, args.crowd_dir / name, reference, args.folds, args.repeats)
            for name in args.sets
        }
        report["targets"] = targets(report["real"])
    if "lodo" not in args.skip:
        report["lodo"] = bench_lodo(args.crowd_dir, args.lodo_sets, reference, args.glad_limit)
    if "synthetic" not in args.skip:
        with tempfile.TemporaryDirectory() as tmp:
            report["synthetic"] = bench_synthetic(
                args.synthetic_items, reference, args.glad_timeout, Path(tmp)
            )
    if "fallback" not in args.skip:
        report["fallback"] = bench_fallback()
    print_tables(report)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
