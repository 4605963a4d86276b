"""False alarms of the default assessment: every sound model of assess_models.py, over several
data splits, through every check (training data passed, so membership runs too). A sound
model must pass; this prints what each run found, with its time and predictions.

    python bench/false_alarms.py [--seeds 3] [--out bench-out/false-alarms]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from assess_models import build

from modelshield.assess import assess
from modelshield.core.policy import Policy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="bench-out/false-alarms")
    args = parser.parse_args()
    policy = Policy()
    alarms = 0
    runs = 0
    print(f"{'model':<16} {'seed':>4} {'time s':>7} {'calls':>6} {'rows':>7}  findings")
    for seed in range(args.seeds):
        for name, model, test, train, target, sensitive in build(Path(args.out), seed):
            start = time.perf_counter()
            report = policy.apply(
                assess(model, test, target, sensitive=sensitive, policy=policy, train_data=train)
            )
            elapsed = time.perf_counter() - start
            info = report.assessment
            assert info is not None
            failing = [f for f in report.findings if f.severity >= policy.fail_on]
            runs += 1
            alarms += bool(failing) or bool(report.errors)
            shown = "; ".join(
                f"{f.rule_id} {f.evidence.get('slice') or f.evidence.get('column') or ''}"
                for f in failing
            ) + "; ".join(e.message for e in report.errors)
            print(
                f"{name:<16} {seed:>4} {elapsed:7.2f} {info.total_calls:>6} "
                f"{info.total_rows:>7}  {shown or '-'}"
            )
    print(
        f"\n{alarms} of {runs} sound-model runs raised a finding at or above "
        f"{policy.fail_on.label} or an error"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
