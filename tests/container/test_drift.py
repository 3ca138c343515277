"""The container's drift check: the statistics on synthetic data (fixed seeds), the baseline, both
clouds' capture layouts, and `python -m twinserve_serving drift` end to end."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from twinserve_serving import drift
from twinserve_serving.drift import (
    UNSEEN,
    Capture,
    DriftInputError,
    check_drift,
    chi2_sf,
    chi_squared_test,
    compute_baseline,
    jensen_shannon,
    linf,
    psi,
    read_capture,
    read_table,
    write_report,
)

N = 3000


def reference_columns(seed: int = 0, n: int = N) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(10.0, 2.0, n).tolist(),
        "y": rng.exponential(1.0, n).tolist(),
        "color": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]).tolist(),
    }


def rows_of(columns: dict[str, list]) -> list[list]:
    return [list(row) for row in zip(*columns.values(), strict=True)]


def baseline_with(numeric=("psi", 0.2), categorical=("linf", 0.1), min_rows=100) -> dict:
    return compute_baseline(
        reference_columns(), {"color"}, numeric_check=numeric, categorical_check=categorical, min_rows=min_rows
    )


def by_name(results: dict) -> dict[str, dict]:
    return {f["name"]: f for f in results["features"]}


# ---------------------------------------------------------------------------- statistics
def test_psi_and_jensen_shannon_match_hand_computed_values():
    # (0.75 - 0.5) ln(1.5) + (0.25 - 0.5) ln(0.5) = 0.25 (0.405465 + 0.693147)
    assert psi([0.5, 0.5], [0.75, 0.25]) == pytest.approx(0.274653, abs=1e-6)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert jensen_shannon([0.5, 0.5], [0.5, 0.5]) == pytest.approx(0.0)
    # p=(1,0), q=(0.5,0.5): m=(0.75,0.25); KL(p||m)=log2(4/3), KL(q||m)=0.5 log2(2/3)+0.5 log2(2)
    expected = math.sqrt((math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5) / 2)
    assert jensen_shannon([1, 0], [0.5, 0.5]) == pytest.approx(expected)
    assert linf([0.5, 0.3, 0.2], [0.3, 0.3, 0.4]) == pytest.approx(0.2)


def test_psi_stays_finite_when_a_bin_is_empty():
    value = psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    assert math.isfinite(value) and value > 1


@pytest.mark.parametrize(
    ("x", "dof", "p"),
    [(3.841459, 1, 0.05), (18.307038, 10, 0.05), (6.634897, 1, 0.01), (2.0, 2, math.exp(-1)), (0.0, 3, 1.0)],
)
def test_chi_squared_survival_function_known_values(x, dof, p):
    assert chi2_sf(x, dof) == pytest.approx(p, rel=1e-5)


def test_chi_squared_test_of_a_two_by_two_table():
    # [[10, 20], [20, 10]]: expected 15 everywhere, statistic 4 * 25 / 15, one degree of freedom
    statistic, dof, p = chi_squared_test([10, 20], [20, 10])
    assert (statistic, dof) == (pytest.approx(20 / 3), 1)
    assert p == pytest.approx(chi2_sf(20 / 3, 1)) and p < 0.01


@pytest.mark.parametrize(
    ("numeric", "categorical"),
    [(("psi", 0.2), ("linf", 0.1)), (("jensen_shannon", 0.1), ("chi_squared", 0.05))],
)
def test_same_distribution_other_sample_is_not_drift(numeric, categorical):
    results = check_drift(baseline_with(numeric, categorical), rows_of(reference_columns(seed=1)))
    assert results["status"] == "no_drift", results
    assert results["drifted_features"] == 0 and results["max_score"] < 1
    assert {f["statistic"] for f in results["features"]} == {numeric[0], categorical[0]}


@pytest.mark.parametrize("statistic", [("psi", 0.2), ("jensen_shannon", 0.1)])
@pytest.mark.parametrize("shift", [+3.0, -3.0])
def test_a_mean_shift_either_way_is_drift(statistic, shift):
    current = reference_columns(seed=2)
    current["x"] = [v + shift for v in current["x"]]
    results = check_drift(baseline_with(numeric=statistic), rows_of(current))
    features = by_name(results)
    assert results["status"] == "drift"
    assert features["x"]["drifted"] and features["x"]["score"] > 1
    assert not features["y"]["drifted"] and not features["color"]["drifted"]
    assert (features["x"]["current"]["mean"] > features["x"]["reference"]["mean"]) == (shift > 0)


@pytest.mark.parametrize("statistic", [("linf", 0.1), ("chi_squared", 0.05)])
def test_a_shifted_category_mix_is_drift(statistic):
    current = reference_columns(seed=3)
    rng = np.random.default_rng(4)
    current["color"] = rng.choice(["red", "green", "blue"], N, p=[0.2, 0.3, 0.5]).tolist()
    features = by_name(check_drift(baseline_with(categorical=statistic), rows_of(current)))
    assert features["color"]["drifted"] and features["color"]["score"] > 1
    assert not features["x"]["drifted"]
    shares = {c["category"]: c for c in features["color"]["categories"]}
    assert shares["blue"]["current"] > shares["blue"]["reference"]


def test_unseen_categories_count_as_one_category_of_their_own():
    current = reference_columns(seed=5)
    current["color"] = ["purple" if i % 2 else "orange" for i in range(N)]
    color = by_name(check_drift(baseline_with(), rows_of(current)))["color"]
    assert color["unseen"] == pytest.approx(1.0)
    assert {c["category"] for c in color["categories"]} == {"red", "green", "blue", UNSEEN}
    assert color["value"] == pytest.approx(1.0)  # red's 0.5 share vanished, unseen gained 1.0
    assert color["drifted"]


def test_chi_squared_scores_threshold_over_p():
    current = reference_columns(seed=6)
    results = check_drift(baseline_with(categorical=("chi_squared", 0.05)), rows_of(current))
    color = by_name(results)["color"]
    assert color["score"] == pytest.approx(0.05 / color["value"])


def test_fewer_rows_than_min_rows_is_insufficient_data_and_flags_nothing():
    current = reference_columns(seed=7, n=50)
    current["x"] = [v + 100 for v in current["x"]]
    results = check_drift(baseline_with(min_rows=100), rows_of(current))
    assert results["status"] == "insufficient_data" and results["rows"] == 50
    assert results["drifted_features"] == 0 and not any(f["drifted"] for f in results["features"])
    assert results["max_score"] is None


# ---------------------------------------------------------------------------- baseline
def test_baseline_numeric_bins_are_reference_deciles_and_proportions_sum_to_one():
    baseline = baseline_with()
    assert baseline["format_version"] == 1 and baseline["min_rows"] == 100
    assert [f["name"] for f in baseline["features"]] == ["x", "y", "color"]
    x = baseline["features"][0]
    assert (x["kind"], x["statistic"], x["threshold"]) == ("numeric", "psi", 0.2)
    assert len(x["edges"]) == 9 and x["edges"] == sorted(x["edges"])
    assert x["edges"][4] == pytest.approx(np.median(reference_columns()["x"]), abs=0.01)
    assert len(x["proportions"]) == 10 and sum(x["proportions"]) == pytest.approx(1.0)
    assert all(p == pytest.approx(0.1, abs=0.002) for p in x["proportions"])
    assert x["count"] == N and x["mean"] == pytest.approx(10.0, abs=0.2) and x["std"] == pytest.approx(2.0, abs=0.1)
    json.dumps(baseline)  # JSON-serialisable


def test_baseline_dedupes_edges_of_a_column_with_few_values_and_keeps_categories_as_strings():
    baseline = compute_baseline({"n": [0.0] * 80 + [1.0] * 20, "c": [1.0, 2.0] * 50}, {"c"}, min_rows=1)
    n, c = baseline["features"]
    assert n["edges"] == [0.0, 1.0] and n["proportions"] == pytest.approx([0.8, 0.2, 0.0])
    assert c["categories"] == {"1": 0.5, "2": 0.5}
    assert sum(c["categories"].values()) == pytest.approx(1.0)


def test_baseline_rejects_what_it_cannot_use():
    with pytest.raises(DriftInputError, match="non-numeric value 'abc'.*categorical"):
        compute_baseline({"a": [1.0, "abc"]})
    with pytest.raises(DriftInputError, match="linf.*not one of psi, jensen_shannon"):
        compute_baseline({"a": [1.0]}, numeric_check=("linf", 0.1))
    with pytest.raises(DriftInputError, match=r"chi_squared needs a threshold in \(0.0, 0.5\]"):
        compute_baseline({"a": ["x"]}, {"a"}, categorical_check=("chi_squared", 0.9))
    with pytest.raises(DriftInputError, match="not columns of the dataset; it has: a"):
        compute_baseline({"a": [1.0]}, features=["b"])


def test_statistic_table_is_the_one_the_spec_rules_use():
    from twinserve.spec import rules

    assert rules.DRIFT_STATISTICS is drift.STATISTICS


# ---------------------------------------------------------------------------- reference datasets
def test_read_table_csv_jsonl_and_npy(tmp_path):
    (tmp_path / "r.csv").write_text("a,b\n1,x\n2.5,y\n")
    assert read_table(tmp_path / "r.csv") == {"a": [1.0, 2.5], "b": ["x", "y"]}
    (tmp_path / "r.jsonl").write_text('{"a": 1, "b": "x"}\n\n{"a": 2, "b": "y"}\n')
    assert read_table(tmp_path / "r.jsonl") == {"a": [1.0, 2.0], "b": ["x", "y"]}
    np.save(tmp_path / "r.npy", np.array([[1, 2], [3, 4]]))
    assert read_table(tmp_path / "r.npy") == {"f0": [1.0, 3.0], "f1": [2.0, 4.0]}
    with pytest.raises(DriftInputError, match="use a .csv, .jsonl, .npy file"):
        read_table(tmp_path / "r.parquet")


# ---------------------------------------------------------------------------- captured requests
TIME = "2024-01-01T00:00:00Z"


def sagemaker_line(data: str, encoding: str, content_type: str, when: str = TIME) -> str:
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": '{"predictions": [0]}',
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": "b6a5e2c0-0000-4000-8000-000000000001", "inferenceTime": when},
            "eventVersion": "0",
        }
    )


def azure_line(data, content_type: str = "application/json", when: str = TIME, **extra) -> str:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "19790b87-a63c-4295-9a67-febb2d8fbce0",
            "source": "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/"
            "workspaces/ws/onlineEndpoints/iris/deployments/blue",
            "type": "azureml.inference.request",
            "datacontenttype": content_type,
            "time": when,
            "data": data,
            "path": "/score",
            "method": "POST",
            "contentrange": "bytes 0-59/*",
            "correlationid": "aaaa0000-bb11-2222-33cc-444444dddddd",
            "xrequestid": "aaaa0000-bb11-2222-33cc-444444dddddd",
            "modelversion": "default",
            **extra,
        }
    )


def small_baseline(min_rows: int = 1) -> dict:
    return compute_baseline(
        {"x": [1.0, 2.0, 3.0, 4.0], "color": ["red", "blue", "red", "blue"]}, {"color"}, min_rows=min_rows
    )


def write_capture(root: Path, relative: str, lines: list[str]) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sagemaker_capture_in_csv_json_and_base64_encodings(tmp_path):
    npy = io.BytesIO()
    np.save(npy, np.array([[7.0, 1.0]]))
    write_capture(
        tmp_path,
        "iris-prod/AllTraffic/2024/01/01/00/capture-1.jsonl",
        [
            sagemaker_line("1.5,red\n2.5,blue", "CSV", "text/csv"),
            sagemaker_line('{"instances": [[3.5, "red"]]}', "JSON", "application/json"),
            sagemaker_line(base64.b64encode(b"4.5,blue").decode(), "BASE64", "text/csv"),
            sagemaker_line(base64.b64encode(b'{"inputs": [[5.5, "red"]]}').decode(), "BASE64", "application/json"),
            sagemaker_line(base64.b64encode(npy.getvalue()).decode(), "BASE64", "application/x-npy"),
            sagemaker_line("color,x\nblue,6.5", "CSV", "text/csv"),  # a header: by name, reordered
        ],
    )
    capture = read_capture(tmp_path, small_baseline())
    assert capture.rows == [
        ["1.5", "red"],
        ["2.5", "blue"],
        [3.5, "red"],
        ["4.5", "blue"],
        [5.5, "red"],
        [7.0, 1.0],
        ["6.5", "blue"],
    ]
    assert capture.records == 6 and not capture.skipped


def test_azure_payload_logging_with_json_data_string_data_and_base64(tmp_path):
    write_capture(
        tmp_path,
        "modelDataCollector/iris/blue/request/2024/01/01/00/part-0.jsonl",
        [
            azure_line({"data": [[1.0, "red"], [2.0, "blue"]]}),
            azure_line({"input_data": {"columns": ["color", "x"], "data": [["red", 3.0]]}}),
            azure_line([{"x": 4.0, "color": "blue"}]),
            azure_line(json.dumps({"instances": [[5.0, "red"]]})),  # the body as a JSON string
            azure_line("6.0,blue", content_type="text/csv"),
            azure_line(base64.b64encode(b"7.0,red").decode(), content_type="text/csv"),
            azure_line(None, type="azureml.inference.response"),
        ],
    )
    capture = read_capture(tmp_path, small_baseline())
    assert capture.rows == [
        [1.0, "red"],
        [2.0, "blue"],
        [3.0, "red"],
        [4.0, "blue"],
        [5.0, "red"],
        ["6.0", "blue"],
        ["7.0", "red"],
    ]
    assert capture.skipped == {"not_a_request": 1}


def test_bad_lines_are_counted_not_fatal_and_other_files_are_ignored(tmp_path):
    lines = [
        "{not json",
        json.dumps({"hello": "world"}),
        json.dumps([1, 2]),
        sagemaker_line("!!!not base64", "BASE64", "text/csv"),
        sagemaker_line(base64.b64encode(b"<xml/>").decode(), "BASE64", "application/xml"),
        sagemaker_line("{broken", "JSON", "application/json"),
        azure_line(None, dataref="azureml://datastores/workspaceblobstore/paths/big.jsonl").replace(
            '"data": null, ', ""
        ),
        azure_line("1.0,red", content_type="text/csv", contentrange="bytes 0-6/5000"),
        sagemaker_line("1.0,red,extra", "CSV", "text/csv"),  # width mismatch
        sagemaker_line("1.0,red", "CSV", "text/csv"),  # the one good row
    ]
    write_capture(tmp_path, "a/b.jsonl", lines)
    write_capture(tmp_path, "a/notes.txt", [sagemaker_line("9.0,red", "CSV", "text/csv")])
    capture = read_capture(tmp_path, small_baseline())
    assert capture.rows == [["1.0", "red"]]
    assert capture.skipped == {
        "invalid_json_line": 1,
        "unknown_layout": 2,
        "invalid_base64": 1,
        "unsupported_content_type": 1,
        "undecodable_body": 1,
        "payload_stored_separately": 1,
        "truncated_payload": 1,
        "width_mismatch": 1,
    }
    results = check_drift(small_baseline(), capture)
    assert results["skipped_records"]["width_mismatch"] == 1 and results["rows"] == 1


def test_named_rows_missing_a_feature_are_skipped(tmp_path):
    write_capture(tmp_path, "c.jsonl", [azure_line([{"x": 1.0}]), azure_line([{"x": 1.0, "color": "red", "z": 2}])])
    capture = read_capture(tmp_path, small_baseline())
    assert capture.rows == [[1.0, "red"]] and capture.skipped == {"missing_feature": 1}


def test_since_window_filters_by_inference_time_and_time(tmp_path):
    write_capture(
        tmp_path,
        "w.jsonl",
        [
            sagemaker_line("1.0,red", "CSV", "text/csv", when="2024-01-01T00:00:00Z"),
            sagemaker_line("2.0,red", "CSV", "text/csv", when="2024-01-02T12:00:00Z"),
            azure_line({"data": [[3.0, "red"]]}, when="2024-01-01T06:00:00Z"),
            azure_line({"data": [[4.0, "red"]]}, when="2024-01-03T00:00:00Z"),
        ],
    )
    capture = read_capture(tmp_path, small_baseline(), since=datetime(2024, 1, 2, tzinfo=UTC))
    assert capture.rows == [["2.0", "red"], [4.0, "red"]]
    assert capture.outside_window == 2 and capture.records == 4


def test_capture_files_are_read_in_sorted_order(tmp_path):
    write_capture(tmp_path, "2024/01/02/00/z.jsonl", [sagemaker_line("2.0,red", "CSV", "text/csv")])
    write_capture(tmp_path, "2024/01/01/23/a.jsonl", [sagemaker_line("1.0,red", "CSV", "text/csv")])
    assert [row[0] for row in read_capture(tmp_path, small_baseline()).rows] == ["1.0", "2.0"]


def test_a_watched_subset_takes_positional_rows_in_the_datasets_column_order(tmp_path):
    baseline = compute_baseline(
        {"a": [1.0, 2.0], "b": [3.0, 4.0], "c": ["u", "v"]}, {"c"}, features=["c", "a"], min_rows=1
    )
    write_capture(tmp_path, "s.jsonl", [sagemaker_line("1.0,3.0,u", "CSV", "text/csv")])
    capture = read_capture(tmp_path, baseline)
    assert capture.rows == [["1.0", "3.0", "u"]]
    assert [f["name"] for f in check_drift(baseline, capture)["features"]] == ["c", "a"]


# ---------------------------------------------------------------------------- report and command
def test_write_report_writes_both_files_and_no_partial_names(tmp_path):
    results = check_drift(baseline_with(), rows_of(reference_columns(seed=1)))
    json_path, md_path = write_report(results, tmp_path / "out")
    assert json.loads(json_path.read_text()) == results
    text = md_path.read_text()
    assert "| feature | kind | statistic | value | threshold | score | drifted |" in text
    assert "| color | categorical | linf |" in text and "No drift" in text and "How to read it" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["drift-report.md", "drift.json"]


def test_check_drift_accepts_a_capture_with_its_skipped_records():
    capture = Capture(rows=[[1.0, "red"]], records=3, skipped={"invalid_json_line": 2})
    results = check_drift(small_baseline(), capture)
    assert results["skipped_records"] == {"invalid_json_line": 2} and results["records"] == 3


def drifting_capture(root: Path, shift: float) -> Path:
    rng = np.random.default_rng(11)
    lines = []
    for _ in range(40):  # 40 requests of 10 CSV rows each
        out = io.StringIO()
        writer = csv.writer(out)
        for _ in range(10):
            writer.writerow(
                [
                    rng.normal(10.0 + shift, 2.0),
                    rng.exponential(1.0),
                    rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2]),
                ]
            )
        lines.append(sagemaker_line(out.getvalue(), "CSV", "text/csv"))
    write_capture(root, "iris/AllTraffic/2024/01/01/00/c.jsonl", lines)
    return root


def run_drift_command(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TWINSERVE_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "twinserve_serving", "drift", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


@pytest.fixture
def baseline_file(tmp_path) -> Path:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline_with()))
    return path


def test_drift_command_end_to_end_exit_0_then_3_with_fail_on_drift(tmp_path, baseline_file):
    capture = drifting_capture(tmp_path / "capture", shift=4.0)
    out = tmp_path / "out"
    result = run_drift_command("--baseline", str(baseline_file), "--capture", str(capture), "--output", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["event"] == "twinserve.drift" and summary["status"] == "drift"
    assert summary["rows"] == 400 and summary["drifted_features"] == 1 and summary["max_score"] > 1
    assert summary["output"] == str(out / "drift.json") and (out / "drift-report.md").is_file()
    assert by_name(json.loads((out / "drift.json").read_text()))["x"]["drifted"]

    failing = run_drift_command(
        "--baseline", str(baseline_file), "--capture", str(capture), "--output", str(out), "--fail-on-drift"
    )
    assert failing.returncode == 3, failing.stderr


def test_drift_command_takes_its_folders_from_the_environment(tmp_path, baseline_file):
    capture = drifting_capture(tmp_path / "capture", shift=0.0)
    env = {
        "TWINSERVE_DRIFT_BASELINE": str(baseline_file),
        "TWINSERVE_DRIFT_CAPTURE": str(capture),
        "TWINSERVE_DRIFT_OUTPUT": str(tmp_path / "out"),
        "TWINSERVE_DRIFT_SINCE_HOURS": "1000000",
    }
    result = run_drift_command("--fail-on-drift", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "no_drift" and summary["rows"] == 400


def test_drift_command_since_hours_leaves_old_records_out(tmp_path, baseline_file):
    capture = drifting_capture(tmp_path / "capture", shift=4.0)  # captured in 2024: long before the window
    result = run_drift_command(
        "--baseline", str(baseline_file), "--capture", str(capture), "--output", str(tmp_path / "o"),
        "--since-hours", "24", "--fail-on-drift",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "insufficient_data"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_baseline", "--baseline"),
        ("invalid_baseline", "not a twinserve drift baseline"),
        ("missing_capture", "--capture"),
        ("bad_since", "--since-hours"),
        ("no_output", "set TWINSERVE_DRIFT_OUTPUT"),
    ],
)
def test_drift_command_bad_input_exits_2_naming_the_argument(tmp_path, baseline_file, case, expected):
    capture = tmp_path / "capture"
    capture.mkdir()
    args = {"--baseline": str(baseline_file), "--capture": str(capture), "--output": str(tmp_path / "out")}
    if case == "missing_baseline":
        args["--baseline"] = str(tmp_path / "nope.json")
    elif case == "invalid_baseline":
        (tmp_path / "bad.json").write_text('{"features": []}')
        args["--baseline"] = str(tmp_path / "bad.json")
    elif case == "missing_capture":
        args["--capture"] = str(tmp_path / "nowhere")
    elif case == "bad_since":
        args["--since-hours"] = "-3"
    elif case == "no_output":
        del args["--output"]
    result = run_drift_command(*[part for pair in args.items() for part in pair])
    assert result.returncode == 2
    assert expected in result.stderr and result.stdout == ""


def test_drift_command_needs_no_model(tmp_path, baseline_file):
    capture = drifting_capture(tmp_path / "capture", shift=0.0)
    env = {"TWINSERVE_MODEL_DIR": str(tmp_path / "no-model-here"), "SAGEMAKER_BIND_TO_PORT": "not-a-port"}
    result = run_drift_command(
        "--baseline", str(baseline_file), "--capture", str(capture), "--output", str(tmp_path / "o"), env=env
    )
    assert result.returncode == 0, result.stderr


def test_drift_module_imports_only_the_standard_library_and_numpy():
    import ast

    tree = ast.parse(Path(drift.__file__).read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    outside = {name for name in imported if name not in sys.stdlib_module_names} - {"numpy"}
    assert not outside, outside  # no pandas, scipy or cloud SDK in the image's drift job


def test_rows_of_the_wrong_width_given_directly_are_skipped_and_counted():
    results = check_drift(small_baseline(), [[1.0, "red"], [1.0], [2.0, "blue", 3]])
    assert results["rows"] == 1 and results["skipped_records"] == {"width_mismatch": 2}
