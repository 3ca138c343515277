"""`twinserve drift`: the container's drift check on this machine, with a baseline JSON or a reference
dataset and the spec's monitoring settings; exit 1 on drift so CI can gate on it."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from twinserve.cli import main
from twinserve.drift_baseline import baseline_for_monitoring, write_baseline
from twinserve.spec import load_spec
from twinserve.spec.models import MonitoringSpec
from twinserve_serving.drift import DriftInputError

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE = REPO_ROOT / "deploy" / "twinserve.yaml"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]


def iris_like(seed: int, n: int, shift: float = 0.0, species_p=(1 / 3, 1 / 3, 1 / 3)) -> list[list]:
    rng = np.random.default_rng(seed)
    return [
        [
            round(rng.normal(5.8 + shift, 0.8), 3),
            round(rng.normal(3.0, 0.4), 3),
            round(rng.normal(3.7, 1.7), 3),
            round(rng.normal(1.2, 0.7), 3),
            str(rng.choice(["setosa", "versicolor", "virginica"], p=species_p)),
        ]
        for _ in range(n)
    ]


def write_reference(path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FEATURES)
        writer.writerows(iris_like(seed=0, n=2000))
    return path


def write_capture(root: Path, rows: list[list], per_request: int = 10) -> Path:
    """SageMaker data capture files of CSV requests (no header: positional, the dataset's column order)."""
    folder = root / "iris-staging" / "AllTraffic" / "2024" / "01" / "01" / "00"
    folder.mkdir(parents=True)
    lines = []
    for start in range(0, len(rows), per_request):
        body = "\n".join(",".join(str(v) for v in row) for row in rows[start : start + per_request])
        lines.append(
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": "text/csv",
                            "mode": "INPUT",
                            "data": body,
                            "encoding": "CSV",
                        }
                    },
                    "eventMetadata": {"eventId": f"e{start}", "inferenceTime": "2024-01-01T00:00:00Z"},
                    "eventVersion": "0",
                }
            )
        )
    (folder / "capture.jsonl").write_text("\n".join(lines) + "\n")
    return root


def write_spec(tmp_path: Path, monitoring: dict) -> Path:
    """The sample spec, copied into tmp_path with staging monitored (paths kept pointing at the repository)."""
    raw = yaml.safe_load(SAMPLE.read_text())
    raw["model"]["artifact"]["path"] = str(REPO_ROOT / "build" / "sample-model" / "model")
    raw["container"]["build"] = str(REPO_ROOT / "model_containers")
    for env in raw["environments"].values():
        env.pop("monitoring", None)  # the sample monitors staging and prod: only staging here
    raw["environments"]["staging"]["monitoring"] = monitoring
    spec = tmp_path / "twinserve.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    return spec


@pytest.fixture
def reference(tmp_path) -> Path:
    return write_reference(tmp_path / "reference.csv")


@pytest.fixture
def spec(tmp_path, reference) -> Path:
    return write_spec(
        tmp_path,
        {
            "reference_dataset": "reference.csv",
            "features": ["sepal_length", "petal_width", "species"],
            "categorical_features": ["species"],
            "numeric": {"statistic": "jensen_shannon", "threshold": 0.1},
            "categorical": {"statistic": "chi_squared", "threshold": 0.01},
            "min_rows": 50,
        },
    )


def test_baseline_for_monitoring_reads_the_dataset_beside_the_spec(spec):
    monitoring = load_spec(spec).environment("staging").monitoring
    baseline = baseline_for_monitoring(monitoring, spec.parent)
    assert baseline["columns"] == FEATURES and baseline["min_rows"] == 50
    assert [(f["name"], f["kind"], f["statistic"], f["threshold"]) for f in baseline["features"]] == [
        ("sepal_length", "numeric", "jensen_shannon", 0.1),
        ("petal_width", "numeric", "jensen_shannon", 0.1),
        ("species", "categorical", "chi_squared", 0.01),
    ]
    written = write_baseline(baseline, spec.parent / "out" / "baseline.json")
    assert json.loads(written.read_text()) == baseline


def test_unknown_feature_is_named_with_the_datasets_columns(tmp_path, reference):
    spec = write_spec(tmp_path, {"reference_dataset": "reference.csv", "features": ["sepal_length", "petal_size"]})
    monitoring = load_spec(spec).environment("staging").monitoring
    with pytest.raises(DriftInputError) as info:
        baseline_for_monitoring(monitoring, spec.parent)
    message = str(info.value)
    assert "monitoring.features" in message and "petal_size" in message and "sepal_width" in message


def test_missing_reference_dataset_names_the_field(tmp_path):
    spec = write_spec(tmp_path, {"reference_dataset": "missing.csv"})
    with pytest.raises(DriftInputError, match="monitoring.reference_dataset: dataset .*missing.csv does not exist"):
        baseline_for_monitoring(load_spec(spec).environment("staging").monitoring, spec.parent)


def test_baseline_json_and_drift_exits_1_naming_the_feature(tmp_path, reference, capsys):
    # a baseline JSON as the stacks write it, then a capture whose sepal_length moved up by 1.5
    monitoring = MonitoringSpec(reference_dataset="reference.csv", categorical_features=["species"])
    baseline = write_baseline(baseline_for_monitoring(monitoring, tmp_path), tmp_path / "baseline.json")
    capture = write_capture(tmp_path / "c1", iris_like(2, 300, shift=1.5))
    out = tmp_path / "report"
    code = main(["drift", str(baseline), str(capture), "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "drifted: sepal_length" in printed and "| sepal_length | numeric | psi |" in printed
    assert (out / "drift-report.md").is_file() and json.loads((out / "drift.json").read_text())["status"] == "drift"


def test_reference_dataset_with_spec_settings_no_drift_exits_0(tmp_path, reference, spec, capsys):
    capture = write_capture(tmp_path / "capture", iris_like(3, 400))
    out = tmp_path / "report"
    code = main(["drift", str(reference), str(capture), "--spec", str(spec), "--env", "staging", "--output", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    results = json.loads((out / "drift.json").read_text())
    assert results["status"] == "no_drift" and results["rows"] == 400
    assert [f["statistic"] for f in results["features"]] == ["jensen_shannon", "jensen_shannon", "chi_squared"]
    assert "| species | categorical | chi_squared |" in printed


def test_reference_dataset_with_spec_settings_category_drift_exits_1(tmp_path, reference, spec, capsys):
    capture = write_capture(tmp_path / "capture", iris_like(4, 400, species_p=(0.7, 0.2, 0.1)))
    code = main(["drift", str(reference), str(capture), "--spec", str(spec), "--output", str(tmp_path / "r")])
    printed = capsys.readouterr().out
    assert code == 1  # --env defaults to the only environment with monitoring
    assert "drifted: species" in printed


def test_unknown_feature_in_the_spec_exits_2_naming_it(tmp_path, reference, capsys):
    spec = write_spec(tmp_path, {"reference_dataset": "reference.csv", "features": ["petal_size"]})
    capture = write_capture(tmp_path / "capture", iris_like(5, 100))
    code = main(["drift", str(reference), str(capture), "--spec", str(spec), "--env", "staging"])
    err = capsys.readouterr().err
    assert code == 2
    assert "monitoring.features" in err and "petal_size" in err and "sepal_length" in err


def test_an_environment_without_monitoring_exits_2(tmp_path, reference, spec, capsys):
    capture = write_capture(tmp_path / "capture", iris_like(5, 100))
    assert main(["drift", str(reference), str(capture), "--spec", str(spec), "--env", "prod"]) == 2
    assert "--env prod" in capsys.readouterr().err


def test_bad_input_exits_2(tmp_path, reference, capsys):
    assert main(["drift", str(reference), str(tmp_path / "nowhere")]) == 2
    assert "CAPTURE_DIR" in capsys.readouterr().err
    assert main(["drift", str(tmp_path / "nope.json"), str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_without_a_spec_text_columns_are_categorical_and_the_defaults_apply(tmp_path, reference, capsys):
    capture = write_capture(tmp_path / "capture", iris_like(7, 300))
    assert main(["drift", str(reference), str(capture), "--output", str(tmp_path / "r")]) == 0
    results = json.loads((tmp_path / "r" / "drift.json").read_text())
    assert [(f["name"], f["statistic"], f["threshold"]) for f in results["features"]] == [
        ("sepal_length", "psi", 0.2),
        ("sepal_width", "psi", 0.2),
        ("petal_length", "psi", 0.2),
        ("petal_width", "psi", 0.2),
        ("species", "linf", 0.1),
    ]
    assert "no_drift" in capsys.readouterr().out


def test_the_command_runs_as_installed(tmp_path, reference):
    capture = write_capture(tmp_path / "capture", iris_like(6, 200, shift=2.0))
    result = subprocess.run(
        [sys.executable, "-m", "twinserve.cli", "drift", str(reference), str(capture), "--output", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "drifted: sepal_length" in result.stdout
