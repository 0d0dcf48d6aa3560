"""benchmarks/_scripts.py (benchmarks train missing runs by running the experiment script itself) and the
small benchmarks that need no run."""

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
