"""Golden reports: what a coordinator reads must not change by accident."""

from __future__ import annotations

import json

import pytest

import protocode
from helpers import FIXTURES, SEED, assert_golden

PATIENTS = SEED / "examples" / "patients.jsonl"
TRIAL = protocode.load(SEED)


def example(record_id: str) -> dict[str, object]:
    for line in PATIENTS.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["id"] == record_id:
            return dict(record)
    raise KeyError(record_id)


@pytest.mark.parametrize("record_id", ["ZJU-001", "ZJU-009", "ZJU-013"])
def test_explanation_text(record_id: str) -> None:
    text = TRIAL.explain(example(record_id)).to_text() + "\n"
    assert_golden(text, FIXTURES / "reports" / f"explain-{record_id}.txt")


def test_explanation_json_shape() -> None:
    data = TRIAL.explain(example("ZJU-013")).to_json()
    assert data["status"] == "indeterminate"
    assert data["missing"] == ["creatinine"]
    i5 = next(c for c in data["criteria"] if c["id"] == "I5")
    assert i5["verdict"] == "unknown"
    assert any("the window is within 7 days before enrollment" in n for n in i5["notes"])
    assert_golden(
        json.dumps(data, indent=2, ensure_ascii=False) + "\n",
        FIXTURES / "reports" / "explain-ZJU-013.json",
    )
