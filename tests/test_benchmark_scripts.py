"""benchmarks/_scripts.py (benchmarks train missing runs by running the experiment script itself) and the
small benchmarks that need no run."""

import json

import pytest

from tests.scripts import load_script

scripts = load_script("benchmarks/_scripts.py")


def test_run_experiment_runs_the_script_and_reports_its_failure(capfd):
    scripts.run_experiment("text8_oaardm", ["--help"])
    assert "--run-dir" in capfd.readouterr().out
    with pytest.raises(SystemExit, match=r"experiments/text8_oaardm.py --width 0 failed with status \d"):
        scripts.run_experiment("text8_oaardm", ["--width", "0"])
    assert "--width" in capfd.readouterr().err


def test_the_convolution_gradient_benchmark_times_both_gradients_and_compares_them(capsys):
    bench = load_script("benchmarks/conv_gradient.py")
    result = bench.main(
        ["--batch", "1", "--length", "9", "--channels", "3", "--calls", "1", "--repeats", "1"]
    )
    assert result["autodiff"] > 0 and result["written"] > 0
    assert result["difference"] < 1e-5  # the same function and gradients
    out = capsys.readouterr().out
    assert "JAX's differentiation" in out and "written out:" in out


def test_the_convolution_benchmark_times_both_forms_plain_and_in_a_scan(capsys):
    bench = load_script("benchmarks/conv_in_loops.py")
    timings = bench.main(
        ["--channels", "4", "--length", "32", "--batch", "1", "--calls", "2", "--repeats", "1"]
    )
    assert set(timings) == {"conv_plain", "conv_loop", "shift_plain", "shift_loop"}
    assert all(seconds > 0 for seconds in timings.values())
    out = capsys.readouterr().out
    assert "XLA convolution" in out and "shifted products" in out and "faster than XLA's convolution" in out


def test_the_step_cost_benchmark_times_every_arm_and_scales_the_reference_steps(capsys):
    bench = load_script("benchmarks/step_cost.py")
    tiny = "--width 16 --depth 1 --num-heads 2 --mlp-width 32 --seq-len 16 --batch-size 2"
    arms = [f"small={tiny}", f"wide={tiny} --mlp-width 64"]
    results = bench.main([*arms, "--steps", "2", "--rounds", "2", "--reference-steps", "100"])
    assert results["small"]["cost"] == 1.0 and results["small"]["equal_compute_steps"] == 100
    wide = results["wide"]
    assert wide["ms_per_step"] > 0
    assert wide["equal_compute_steps"] == pytest.approx(100 / wide["cost"])
    assert wide["cost"] == pytest.approx(wide["ms_per_step"] / results["small"]["ms_per_step"])
    assert "equal-compute steps" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["no-equals-sign"])


def _fake_run(directory, seed: int, losses: list[float], chars_per_token: int = 2):
    """A run directory holding only what paired_runs.py reads: its config and logged metrics."""
    directory.mkdir()
    config = dict(seed=seed, batch_size=4, seq_len=8, chars_per_token=chars_per_token, warmup_steps=2)
    config.update(lr_schedule="linear", lr_floor=0.0, num_steps=len(losses) * 10)
    (directory / "config.json").write_text(json.dumps({"config": config}))
    records = [dict(step=10 * (i + 1), loss=x, nelbo=2 * x) for i, x in enumerate(losses)]
    (directory / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return directory


def test_the_paired_runs_benchmark_differences_two_runs_step_by_step(tmp_path, capsys):
    bench = load_script("benchmarks/paired_runs.py")
    reference = _fake_run(tmp_path / "a", 0, [3.0, 2.5, 2.0, 1.9, 1.8])
    candidate = _fake_run(tmp_path / "b", 0, [3.0, 2.4, 2.1, 1.7, 1.6])
    results = bench.main(
        [str(reference), str(candidate), "--window", "20", "--out-dir", str(tmp_path / "out")]
    )
    windows = results["windows"]
    assert [(w["first"], w["last"], w["n"]) for w in windows] == [(0, 20, 2), (20, 40, 2), (40, 60, 1)]
    assert windows[0]["loss"] == pytest.approx(-0.05) and windows[1]["loss"] == pytest.approx(-0.05)
    assert windows[1]["loss_se"] == pytest.approx(0.15)  # differences +0.1 and -0.2
    # nelbo is bits per token; with two characters a token the ELBO's difference is per character
    assert windows[2]["elbo"] == pytest.approx(-0.2) and windows[2]["elbo_se"] is None
    assert (tmp_path / "out" / "paired.png").stat().st_size > 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["windows"] == windows
    assert "paired by step" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"--seed \(0 vs 1\)"):
        bench.main([str(reference), str(_fake_run(tmp_path / "c", 1, [3.0]))])
