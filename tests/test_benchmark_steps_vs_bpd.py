"""benchmarks/steps_vs_bpd.py end to end on a tiny run, and its planning input."""

import numpy as np
import pytest

from eqdd import policy
from tests.scripts import TINY_RUN, load_script, write_text8

benchmark = load_script("benchmarks/steps_vs_bpd.py")
experiment = load_script("experiments/text8_oaardm.py")


def test_planning_losses_fill_unseen_steps_and_sort():
    values = np.array([3.0, 0.0, 1.0, 2.0])
    seen = np.array([True, False, True, True])
    np.testing.assert_array_equal(benchmark.planning_losses(values, seen), [3.0, 2.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="no tracked step losses"):
        benchmark.planning_losses(values, np.zeros(4, bool))


def test_benchmark_runs_on_a_trained_checkpoint(tmp_path, capsys):
    write_text8(tmp_path, seed=1, length=40_000)
    run = tmp_path / "run"
    tiny = [
        *TINY_RUN,
        *"--seq-len 16 --batch-size 8 --num-steps 20 --eval-max-chunks 4 --num-samples 0".split(),
        *"--codec-orders 0".split(),
    ]
    experiment.main(["--data-dir", str(tmp_path), "--run-dir", str(run), *tiny])
    results = benchmark.main(
        [
            "--checkpoint",
            str(run),
            "--data-dir",
            str(tmp_path),
            "--budgets",
            "1,4,99",
            "--eval-max-chunks",
            "20",
            "--num-samples",
            "2",
            "--out-dir",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert "DP test bpc" in out and "estimates (mean ± standard error" in out and "NON-STANDARD" in out
    rows = results["rows"]
    assert [r["calls"] for r in rows] == [1, 4, 16]  # 99 > D is dropped, D is added
    for r in rows:
        assert len(r["dp"]["policy"]) == r["calls"] and r["dp"]["stderr"] > 0
        assert r["dp_planned"] <= r["naive_planned"] + 1e-12  # the DP is optimal for the planning L_t
        assert r["sample_seconds"] > 0
    assert rows[-1]["dp"]["policy"] == rows[-1]["naive"]["policy"] == list(range(16))
    for r in (rows[0], rows[-1]):  # the same policy, scored with common random numbers: identical
        assert r["dp"]["bpd"] == r["naive"]["bpd"] and r["dp_minus_naive"] == {"bpd": 0.0, "stderr": 0.0}
    assert rows[0]["dp"]["policy"] == [0]
    losses = np.array(results["planning_step_losses_sorted"])
    assert (
        rows[-1]["dp_planned"]
        == pytest.approx(losses.sum())
        == pytest.approx(policy.policy_cost(losses, range(16)))
    )
    assert (tmp_path / "out" / "steps_vs_bpd.png").stat().st_size > 0
