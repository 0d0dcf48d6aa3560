"""Data-parallel training with shard_map on simulated CPU devices (each check in a fresh process,
since the device count is fixed when JAX starts)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = Path(__file__).with_name("sharded_checks.py")


def _environment(devices: int) -> dict[str, str]:
    env = dict(os.environ)
    # A hang in a collective fails in 60 s instead of blocking the suite.
    env["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={devices} "
        "--xla_cpu_collective_call_terminate_timeout_seconds=60"
    )
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _run(devices: int, *args: str) -> str:
    env = _environment(devices)
    result = subprocess.run([sys.executable, str(CHECKS), *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_sharded_step_equals_the_single_device_step():
    assert "ok equivalence on 8 devices" in _run(8, "equivalence")


def test_pmean_of_local_gradients_is_the_trap_the_step_avoids():
    assert "ok gradient_trap on 8 devices" in _run(8, "gradient_trap")


@pytest.fixture(scope="module")
def eight_device_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sharded")
    assert "ok long_loop on 8 devices" in _run(8, "long_loop", str(directory))
    return directory


def test_a_long_multi_device_loop_completes(eight_device_run):
    assert (eight_device_run / "ckpt").is_dir()


@pytest.mark.parametrize("devices", [1, 4])
def test_a_checkpoint_from_8_devices_restores_on_fewer(eight_device_run, devices):
    assert f"ok restore on {devices} devices" in _run(devices, "restore", str(eight_device_run))


def test_two_processes_train_like_one_device_and_their_checkpoint_restores(tmp_path):
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("localhost", 0))
        port = str(probe.getsockname()[1])
    processes = [
        subprocess.Popen(
            [sys.executable, str(CHECKS), "multiprocess", str(tmp_path)],
            env={
                **_environment(2),
                "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(rank),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output
        assert "ok multiprocess on 4 devices" in output
    # The first process alone wrote the metrics: one record per step.
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 5
    assert "ok restore on 1 devices" in _run(1, "restore", str(tmp_path))
