"""benchmarks/_scripts.py: benchmarks train missing runs by running the experiment script itself."""

import pytest

from tests.scripts import load_script

scripts = load_script("benchmarks/_scripts.py")


def test_run_experiment_runs_the_script_and_reports_its_failure(capfd):
    scripts.run_experiment("text8_oaardm", ["--help"])
    assert "--run-dir" in capfd.readouterr().out
    with pytest.raises(SystemExit, match=r"experiments/text8_oaardm.py --width 0 failed with status \d"):
        scripts.run_experiment("text8_oaardm", ["--width", "0"])
    assert "--width" in capfd.readouterr().err
