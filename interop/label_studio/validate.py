"""Label Studio's own validation of a config and of the annotations and predictions sent to it.

Runs inside Label Studio's virtual environment (`make interop` calls it there): it reads
`{"config": "<View>...", "tasks": [...]}` on stdin and prints a JSON list of problems, one per
annotation or prediction that Label Studio's `LabelInterface` (label_studio_sdk, the validator
Label Studio runs on imported predictions) finds fault with; `[]` when all are clean.
"""

from __future__ import annotations

import json
import sys

from label_studio_sdk.label_interface import LabelInterface


def main() -> None:
    document = json.load(sys.stdin)
    interface = LabelInterface(document["config"])
    problems = []
    for t, task in enumerate(document["tasks"]):
        for kind in ("annotations", "predictions"):
            for n, entry in enumerate(task.get(kind, [])):
                errors = interface.validate_prediction(
                    {"result": entry["result"], "score": entry.get("score")}, return_errors=True
                )
                problems.extend(f"task {t} {kind[:-1]} {n}: {error}" for error in errors)
    json.dump(problems, sys.stdout)


if __name__ == "__main__":
    main()
