"""benchmarks/gpu_session.py: its parts run in children stopped at their shares, and the model part
trains, evaluates and exports a model that eqdd opens (the path a device session takes, on the CPU)."""

import json
import sys

import pytest

import eqdd
from tests.scripts import TINY_RUN, load_script

session = load_script("benchmarks/gpu_session.py")


def test_a_child_past_its_share_is_stopped_and_reported(capsys):
    assert not session._child("slow", [sys.executable, "-c", "import time; time.sleep(60)"], 1)
    assert "[slow] stopped at its share of 1 s" in capsys.readouterr().out
    assert session._child("quick", [sys.executable, "-c", "pass"], 30)
    assert "[quick] exit status 0" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [(["--parts", "model,sampling"], "--parts takes"), (["--shares", "1,2"], "--shares takes three")],
)
def test_bad_parts_and_shares_are_refused(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        session.main(["--out-dir", str(tmp_path), *argv])
    assert not any(tmp_path.iterdir())


def test_the_model_part_trains_for_its_share_and_exports_a_model_eqdd_opens(text8_dir, tmp_path, capsys):
    flags = [*TINY_RUN, *f"--data-dir {text8_dir} --seq-len 32 --batch-size 4 --codec-orders 0".split()]
    session.main(
        [
            *("--parts", "model", "--shares", "0,1,0", "--minutes", "3", "--max-steps", "8"),
            *("--model-flags", " ".join(flags), "--out-dir", str(tmp_path)),
        ]
    )
    out = capsys.readouterr().out
    assert "tokens/s): 8 steps" in out and "[model] exit status 0" in out and "[export] exit status 0" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["steps"] == 8 and 0 < results["test"]["bpd"] < 10
    assert f"test bound {results['test']['bpd']:.4f}" in out
    for name in ("metrics.jsonl", "training.png", "samples.txt"):
        assert (tmp_path / name).is_file()
    run = eqdd.load_run(tmp_path / "model.eqdd-model")
    assert run.step == 8 and run.config.width == 16 and run.config.seq_len == 32
