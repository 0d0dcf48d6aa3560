"""Checkpoints are sealed with checksums once saved; a damaged, incomplete or stray newest checkpoint
is reported in one line and the newest intact one is used (fault injection on tiny states); a torn
metrics line does not block a resume."""

import json
import shutil
from pathlib import Path

import chex
import jax.numpy as jnp
import pytest

from eqdd.train.checkpoint import CHECKSUMS, Checkpointer, CheckpointError, file_checksums
from eqdd.train.metrics import MetricsLog, read_metrics


def _state(step: int) -> dict:
    return {"w": jnp.arange(6.0).reshape(2, 3) * step, "b": jnp.full(4, step, jnp.int32)}


def _write(directory: Path, steps=(1, 2)) -> Path:
    checkpointer = Checkpointer(directory)
    for step in steps:
        checkpointer.save(step, _state(step), {"step": step})
    checkpointer.close()
    return directory


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """Two sealed checkpoints, steps 1 and 2; tests work on copies."""
    return _write(tmp_path_factory.mktemp("saved") / "checkpoints")


def _copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "checkpoints"))


def _restores_step(directory: Path, step: int, capsys, damaged: int | None) -> None:
    checkpointer = Checkpointer(directory)
    assert checkpointer.latest_step() == step
    state, metadata = checkpointer.restore(_state(0))
    assert checkpointer.metadata() == metadata == {"step": step}
    chex.assert_trees_all_equal(state, _state(step), strict=True)
    checkpointer.close()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("eqdd:")]
    if damaged is None:
        assert lines == []
    else:  # one line, naming the checkpoint skipped
        assert len(lines) == 1 and f"skipping checkpoint {damaged} in {directory}" in lines[0], lines


def test_every_finished_save_is_sealed_with_the_checksums_of_all_its_files(saved):
    for step in (1, 2):
        step_dir = saved / str(step)
        sealed = json.loads((step_dir / CHECKSUMS).read_text())
        assert sealed == file_checksums(step_dir) and len(sealed) >= 5
        assert any(name.startswith("state/") for name in sealed)


def test_intact_checkpoints_restore_the_newest_silently(saved, tmp_path, capsys):
    _restores_step(_copy(saved, tmp_path), 2, capsys, damaged=None)


def _files(saved: Path) -> list[str]:
    return sorted(file_checksums(saved / "2"))


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damage_to_any_file_of_the_newest_checkpoint_falls_back_to_the_previous(
    saved, tmp_path, capsys, damage
):
    for index, name in enumerate(_files(saved)):
        directory = _copy(saved, tmp_path / f"{damage}{index}")
        path = directory / "2" / name
        data = path.read_bytes()
        if damage == "flip":
            path.write_bytes(data[:-1] + bytes([data[-1] ^ 0x10]) if data else b"x")
        elif damage == "truncate":
            path.write_bytes(data[: len(data) // 2])
        else:
            path.unlink()
        _restores_step(directory, 1, capsys, damaged=2)


def test_an_unsealed_or_stray_newer_directory_is_skipped(saved, tmp_path, capsys):
    directory = _copy(saved, tmp_path / "unsealed")
    (directory / "2" / CHECKSUMS).unlink()  # killed between orbax's rename and the seal
    _restores_step(directory, 1, capsys, damaged=2)
    directory = _copy(saved, tmp_path / "stray")
    (directory / "7").mkdir()  # an empty directory with a step's name
    _restores_step(directory, 2, capsys, damaged=7)


def test_with_nothing_intact_the_error_says_so(saved, tmp_path, capsys):
    directory = _copy(saved, tmp_path)
    for step in (1, 2):
        path = directory / str(step) / _files(saved)[-1]
        path.write_bytes(path.read_bytes()[:-1])
    checkpointer = Checkpointer(directory)
    assert checkpointer.latest_step() is None
    with pytest.raises(CheckpointError, match="no intact checkpoint in"):
        checkpointer.restore(_state(0))
    err = capsys.readouterr().err
    assert "skipping checkpoint 2" in err and "skipping checkpoint 1" in err


def test_a_run_from_before_seals_is_read_unverified_and_a_broken_newest_is_skipped(saved, tmp_path, capsys):
    directory = _copy(saved, tmp_path)
    for step in (1, 2):
        (directory / str(step) / CHECKSUMS).unlink()
    _restores_step(directory, 2, capsys, damaged=None)  # no seals anywhere: trusted as before
    (directory / "3").mkdir()  # a stray directory: it fails to load and is skipped
    checkpointer = Checkpointer(directory)
    state, metadata = checkpointer.restore(_state(0))
    assert metadata == {"step": 2}
    assert "skipping checkpoint 3" in capsys.readouterr().err


def test_training_on_after_a_fallback_moves_broken_checkpoints_aside(saved, tmp_path, capsys):
    directory = _copy(saved, tmp_path)
    path = directory / "2" / _files(saved)[-1]
    path.write_bytes(path.read_bytes()[:-1])
    (directory / "9").mkdir()  # and a stray newer directory
    (directory / "3.orbax-checkpoint-tmp-1234").mkdir()  # and a save that never finished
    checkpointer = Checkpointer(directory)
    state, _ = checkpointer.restore(_state(0))  # step 1
    checkpointer.tidy()  # what a resuming trainer does
    assert sorted(p.name for p in directory.iterdir()) == ["1", "2.damaged", "9.damaged"]
    checkpointer.save(2, _state(20), {"step": 20})  # the resumed run reaches step 2 again
    checkpointer.save(3, _state(30), {"step": 30})  # rotation keeps the two newest intact ones
    checkpointer.close()
    assert sorted(p.name for p in directory.iterdir()) == ["2", "2.damaged", "3", "9.damaged"]
    state, metadata = Checkpointer(directory).restore(_state(0), step=2)
    assert metadata == {"step": 20}
    chex.assert_trees_all_equal(state, _state(20), strict=True)


def test_saving_over_an_existing_step_moves_it_aside_first(saved, tmp_path, capsys):
    directory = _copy(saved, tmp_path)
    checkpointer = Checkpointer(directory)
    checkpointer.save(2, _state(22), {"step": 22})
    checkpointer.close()
    assert (directory / "2.damaged").is_dir()
    assert Checkpointer(directory).metadata() == {"step": 22}


def test_a_torn_metrics_line_does_not_block_a_resume(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')  # killed mid-write
    log = MetricsLog(path, start_step=2)
    log.write({"step": 3, "loss": 1.0})
    log.close()
    assert read_metrics(path) == [
        {"step": 1, "loss": 2.0},
        {"step": 2, "loss": 1.5},
        {"step": 3, "loss": 1.0},
    ]
    assert "ignoring line 3" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]  # no temporary file left
