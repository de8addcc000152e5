"""How well a short condensation predicts a full one, two ways, on every committed default run.

The search condenses its trials for a short budget and, where a short condensation misses the threshold,
predicts the full one from it, calibrated on the first such trial, which is condensed in full. Each run
with such a measurement gives, for every other plan it condensed both ways (another trial condensed in
full, or the shipped value: its trial's short condensation against the shipped model), what each rule
predicted against what the full condensation reached, on validation:
- gain: the short accuracy plus the points the measured full condensation added (the rule until 2026-12-04);
- gap: the teacher less the share of the short accuracy's gap to the teacher the measured one left (the rule
  since 64852ab);
- lower: the lower of the two (tried after news.csv's first run with the gap rule, not adopted).
Reports given after OUT.json are read as well (a run's ``report.json``). predictions.json was written with
news_gap_rule_64852ab_report.json given, before that run became ``default_news``: run again now, pass none.

    python benchmarks/sweeps/full_condensation_prediction/predictions.py OUT.json [REPORT.json ...]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from skeleton.method.condensation import gap_left, predicted_full

RESULTS = Path(__file__).resolve().parents[2] / "results"


def pairs(report: dict) -> tuple[dict, list[dict]] | None:
    """(the calibrating measurement, every other plan condensed short and in full) of one run."""
    trials, search = report["search"]["trials"], report["search"]
    full = [t for t in trials if "full_condensation_accuracy" in t["details"]]
    if not full:
        return None
    measured = full[0]
    others = [
        {
            "value": t["value"],
            "short": t["details"]["short_condensation_accuracy"],
            "full": t["details"]["full_condensation_accuracy"],
        }
        for t in full[1:]
    ]
    shipped = next((t for t in trials if abs(t["value"] - search["value"]) < 1e-9), None)
    seen = {round(o["value"], 6) for o in others} | {round(measured["value"], 6)}
    if (
        shipped is not None
        and round(shipped["value"], 6) not in seen
        and "short_condensation_accuracy" in shipped["details"]
    ):
        full_accuracy = report["skeleton"]["validation"]["accuracy"]
        others.append(
            {
                "value": shipped["value"],
                "short": shipped["details"]["short_condensation_accuracy"],
                "full": full_accuracy,
            }
        )
    details = measured["details"]
    return {
        "value": measured["value"],
        "short": details["short_condensation_accuracy"],
        "full": details["full_condensation_accuracy"],
    }, others


def main() -> None:
    rows = []
    extra = [Path(p) for p in sys.argv[2:]]
    for path in sorted(RESULTS.glob("default_*/report.json")) + extra:
        report = json.loads(path.read_text())
        found = pairs(report)
        if found is None:
            continue
        measured, others = found
        teacher = report["prompt_tuned"]["validation"]["accuracy"]
        share = gap_left(teacher, measured["short"], measured["full"])
        for other in others:
            if (other["short"], other["full"]) == (measured["short"], measured["full"]):
                continue  # the measured plan itself, under another value
            gain = other["short"] + measured["full"] - measured["short"]
            gap = predicted_full(teacher, share, other["short"])
            rows.append(
                {
                    "run": path.parent.name,
                    "teacher": teacher,
                    "measured": measured,
                    **other,
                    "gain_rule": gain,
                    "gap_rule": gap,
                    "lower_rule": min(gain, gap),
                    "gain_error": gain - other["full"],
                    "gap_error": gap - other["full"],
                    "lower_error": min(gain, gap) - other["full"],
                }
            )
    summary = {
        rule: {
            "median_abs_error": statistics.median(abs(r[f"{rule}_error"]) for r in rows),
            "max_abs_error": max(abs(r[f"{rule}_error"]) for r in rows),
            "over_100": sum(r[f"{rule}_rule"] > 100 for r in rows),
        }
        for rule in ("gain", "gap", "lower")
    }
    for r in rows:
        print(
            f"{r['run']:24} short {r['short']:.2f} full {r['full']:.2f}  gain {r['gain_rule']:7.2f} "
            f"({r['gain_error']:+.2f})  gap {r['gap_rule']:.2f} ({r['gap_error']:+.2f})"
        )
    print(json.dumps(summary, indent=1))
    Path(sys.argv[1]).write_text(json.dumps({"pairs": rows, "summary": summary}, indent=1))


if __name__ == "__main__":
    main()
