"""benchmarks/throughput.py end to end with the smallest settings: every table row is a measurement."""

import json

import pytest

from eqdd.runs.text8_oaardm import Config
from tests.scripts import load_script

benchmark = load_script("benchmarks/throughput.py")


def test_benchmark_times_every_backend(tmp_path, capsys):
    results = benchmark.main(
        [
            *"--presets cpu --backends xla,pallas --steps 1 --repeats 1".split(),
            *"--num-samples 1 --sample-calls 2 --kernel-lengths 64 --out-dir".split(),
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    assert "train tok/s" in out and "fwd+bwd ms" in out
    assert [(r["preset"], r["backend"]) for r in results["training"]] == [("cpu", "xla"), ("cpu", "pallas")]
    for row in results["training"]:
        assert row["train_tokens_per_s"] > 0 and row["sample_tokens_per_s"] > 0 and row["peak_bytes"] > 0
        assert row["batch_size"] == Config().batch_size and row["parameters"] > 0  # the cpu preset's
    assert results["training"][0]["vs_xla"] == 1.0
    assert [r["backend"] for r in results["attention"]] == ["xla", "pallas"]
    assert all(r["forward_ms"] > 0 and r["forward_backward_ms"] > 0 for r in results["attention"])
    assert json.loads((tmp_path / "results.json").read_text())["training"][1]["backend"] == "pallas"


def test_the_baseline_backend_is_required(tmp_path):
    with pytest.raises(SystemExit, match="must include xla"):
        benchmark.main(["--backends", "pallas", "--out-dir", str(tmp_path)])
