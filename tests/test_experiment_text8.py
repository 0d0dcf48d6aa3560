"""The main job end to end on a small synthetic text8-format corpus: run, resume, refuse bad input."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from eqdd.config import ConfigError, parse_config
from eqdd.data import text8
from tests.scripts import ROOT, TINY_RUN, help_text, load_script

SCRIPT = ROOT / "experiments" / "text8_oaardm.py"
experiment = load_script("experiments/text8_oaardm.py")
TINY = [
    *TINY_RUN,
    *"--seq-len 32 --batch-size 4 --checkpoint-every 2 --eval-max-chunks 10 --num-samples 2".split(),
    *"--codec-orders 0".split(),  # the order choice for `eqdd compress` is tested in tests/test_cli.py
]


def test_main_trains_evaluates_samples_and_writes_outputs(text8_dir, tmp_path, capsys):
    run = tmp_path / "run"
    results = experiment.main(
        ["--data-dir", str(text8_dir), "--run-dir", str(run), "--num-steps", "6", *TINY]
    )
    out = capsys.readouterr().out
    assert "NON-STANDARD" in out and "test bound:" in out and "sample 1:" in out
    assert results["steps"] == 6 and results["codec_order"] is None
    assert 0 < results["test"]["bpd"] < 10 and results["test"]["stderr"] > 0
    assert len(results["test"]["step_losses"]) == 32 and len(results["train_step_losses"]) == 32
    samples = (run / "samples.txt").read_text().splitlines()
    assert len(samples) == 2 and all(len(s) == 32 for s in samples)
    assert set("".join(samples)) <= set(text8.ALPHABET + "?")  # no mask token left
    for name in ("metrics.jsonl", "training.png", "config.json", "results.json"):
        assert (run / name).is_file()
    assert json.loads((run / "results.json").read_text())["config"]["seq_len"] == 32


def test_resuming_gives_the_same_run(text8_dir, tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--data-dir", str(text8_dir), *TINY]
    a = experiment.main([*common, "--run-dir", str(straight), "--num-steps", "6"])
    experiment.main([*common, "--run-dir", str(resumed), "--num-steps", "3"])
    b = experiment.main([*common, "--run-dir", str(resumed), "--num-steps", "6"])
    assert a["test"] == b["test"] and a["train_step_losses"] == b["train_step_losses"]


def test_resuming_with_a_different_model_is_refused(text8_dir, tmp_path):
    common = ["--data-dir", str(text8_dir), "--run-dir", str(tmp_path / "run"), "--num-steps", "2", *TINY]
    experiment.main(common)
    with pytest.raises(ConfigError, match="--width: checkpoint has 16, now 32"):
        experiment.main([*common, "--width", "32"])


def test_every_attention_backend_trains_the_same_model(text8_dir, tmp_path):
    common = ["--data-dir", str(text8_dir), *TINY, "--num-steps", "3", "--num-samples", "0"]
    default = experiment.main([*common, "--run-dir", str(tmp_path / "auto")])
    assert default["config"]["attention"] == "auto"
    for backend in ("xla", "pallas"):
        other = experiment.main([*common, "--run-dir", str(tmp_path / backend), "--attention", backend])
        assert other["test"]["bpd"] == pytest.approx(default["test"]["bpd"], abs=1e-4), backend


def test_bad_values_are_refused_with_the_flag_to_change():
    with pytest.raises(ConfigError) as error:
        experiment.main(
            ["--learning-rate", "-1", "--width", "30", "--num-heads", "4", "--ema-decay", "1.5"]
            + ["--optimizer", "adamw", "--muon-split-qkv"]
        )
    message = str(error.value)
    assert "--learning-rate must be > 0, got -1.0" in message
    assert "--width (30) must be divisible by --num-heads (4)" in message
    assert "--ema-decay must be in [0, 1)" in message
    assert "--muon-split-qkv shapes Muon's updates; add --optimizer muon (now adamw)" in message


def test_paper_preset_matches_the_reference():
    config = experiment.parse_config(experiment.Config, ["--preset", "paper"], experiment.PRESETS, "cpu", "")
    assert (config.depth, config.width, config.num_heads, config.mlp_width) == (12, 768, 12, 3072)
    assert (config.batch_size, config.learning_rate, config.warmup_steps, config.clip_norm) == (
        512,
        5e-4,
        5000,
        0.25,
    )
    assert config.seq_len == 250 and config.chars_per_token == 1
    # the CPU presets model pairs of characters
    for preset in ("cpu", "cpu-long"):
        cpu = experiment.parse_config(experiment.Config, ["--preset", preset], experiment.PRESETS, "cpu", "")
        assert cpu.chars_per_token == 2 and cpu.num_positions == 125
        # the longer preset's products in bfloat16 (measured with them), the main job's in float32
        assert cpu.matmuls == ("bfloat16" if preset == "cpu-long" else "float32")
        # the longer preset's rates decay linearly to zero (round 26), the main job's to 30% of the peak
        assert (cpu.lr_schedule, cpu.lr_floor) == (
            ("linear", 0.0) if preset == "cpu-long" else ("cosine", 0.3)
        )
    # a flag overrides the preset, whether or not the preset sets that option
    config = experiment.parse_config(
        experiment.Config, ["--preset", "paper", "--seq-len", "256"], experiment.PRESETS, "cpu", ""
    )
    assert config.seq_len == 256 and config.width == 768
    config = experiment.parse_config(
        experiment.Config, ["--width", "384", "--preset", "paper"], experiment.PRESETS, "cpu", ""
    )
    assert config.width == 384 and config.depth == 12


def test_help_documents_every_option(capsys):
    out = help_text(experiment, capsys)
    assert "--preset" in out and "paper" in out
    assert "--attention {auto,reference,xla,cudnn,pallas}" in out and "--attention STR" not in out


def test_command_line_errors_exit_cleanly(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--data-dir", str(tmp_path), "--run-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "error: --data-dir points to" in result.stderr and "Traceback" not in result.stderr


def test_distributed_without_a_coordinator_is_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--distributed", "--run-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("JAX_COORDINATOR")},
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--distributed: JAX's distributed runtime did not start" in result.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--learning-rate", "inf"], "--learning-rate must be a finite number, got inf"),
        (["--lr-floor", "nan"], "--lr-floor must be a finite number, got nan"),
        (["--seed", "99999999999"], r"--seed must be in \[0, 2\*\*32\), got 99999999999"),
        (["--seq-len", "3000000"], "--seq-len must be at most 16,384"),
        (["--attention", "cudnn"], "--attention cudnn needs an NVIDIA GPU"),
        (["--conv-width", "0", "--mlp-conv"], "--mlp-conv repeats the convolution of --conv-width"),
        (["--seq-len", "25", "--chars-per-token", "2"], r"--seq-len \(25\) must be a multiple of"),
    ],
)
def test_values_that_used_to_end_in_a_traceback_are_refused_up_front(flags, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(experiment.Config, flags, experiment.PRESETS, "cpu", "")


def test_a_run_directory_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file; give a directory"):
        parse_config(experiment.Config, ["--run-dir", str(tmp_path / "file")], experiment.PRESETS, "cpu", "")


def test_two_processes_never_train_one_run(tmp_path, monkeypatch):
    from eqdd.runs import session

    session.lock_run_dir(tmp_path)
    session.lock_run_dir(tmp_path)  # this process again: fine
    holder = session._LOCKS[(tmp_path / ".lock").resolve()]
    monkeypatch.setattr(session, "_LOCKS", {})  # another process: a lock file of its own
    with pytest.raises(ConfigError, match=rf"another process \(pid {os.getpid()}\) is running in"):
        session.lock_run_dir(tmp_path)
    holder.close()  # the process ends: the lock goes with it
    session.lock_run_dir(tmp_path)
    session._LOCKS.popitem()[1].close()


def test_a_killed_process_saves_a_checkpoint_and_resumes(text8_dir, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, str(SCRIPT), "--data-dir", str(text8_dir), "--run-dir", str(run), *TINY]
    process = subprocess.Popen(
        [*command, "--num-steps", "100000", "--checkpoint-every", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while (not metrics.exists() or len(metrics.read_text().splitlines()) < 5) and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "interrupted: the last checkpoint is kept" in stderr and "Traceback" not in stderr
    from eqdd.train import Checkpointer

    saved = Checkpointer(run / "checkpoints").latest_step()
    assert saved is not None and saved >= 5  # the step it was killed at, not a periodic one
    resumed = subprocess.run([*command, "--num-steps", str(saved + 2)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from the checkpoint at step {saved}" in resumed.stdout
    assert json.loads((run / "results.json").read_text())["steps"] == saved + 2


def test_a_run_saved_before_the_new_options_loads_with_their_old_values(tmp_path):
    # A run saved before issue 12 lacks the settings added since; they take the values the run had
    # implicitly, not the new defaults, and resuming it with those values is allowed.
    from eqdd.runs import session

    current = dataclasses.asdict(
        experiment.parse_config(experiment.Config, [], experiment.PRESETS, "cpu", "")
    )
    old = {k: v for k, v in current.items() if k not in experiment.Config.LEGACY}
    config = session.config_from_saved(old, experiment.Config, tmp_path)
    assert {k: getattr(config, k) for k in experiment.Config.LEGACY} == experiment.Config.LEGACY
    assert (
        config.conv_width == 0
        and not config.rotary
        and config.activation == "gelu"
        and config.lr_schedule == "constant"
    )
    session.check_resumable(old, config)
    with pytest.raises(ConfigError, match="--conv-width: checkpoint has 0"):
        session.check_resumable(old, dataclasses.replace(config, conv_width=7))
