"""Data-parallel training with shard_map on simulated CPU devices (each check in a fresh process,
since the device count is fixed when JAX starts; restoring on one device runs here)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import sharded_checks

CHECKS = Path(__file__).with_name("sharded_checks.py")


def _environment(devices: int) -> dict[str, str]:
    env = dict(os.environ)
    # A hang in a collective fails in 60 s instead of blocking the suite (the flags conftest sets kept).
    env["XLA_FLAGS"] = (
        f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices} "
        "--xla_cpu_collective_call_terminate_timeout_seconds=60"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _run(devices: int, *args: str) -> str:
    env = _environment(devices)
    result = subprocess.run([sys.executable, str(CHECKS), *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory) -> tuple[str, Path]:
    """The checks on 8 devices, in one process: their output and the long loop's run directory."""
    directory = tmp_path_factory.mktemp("sharded")
    return _run(8, "equivalence", "gradient_trap", f"long_loop={directory}"), directory


def test_the_sharded_step_equals_the_single_device_step(eight_devices):
    assert "ok equivalence on 8 devices" in eight_devices[0]


def test_pmean_of_local_gradients_is_the_trap_the_step_avoids(eight_devices):
    assert "ok gradient_trap on 8 devices" in eight_devices[0]


def test_a_long_multi_device_loop_completes(eight_devices):
    assert "ok long_loop on 8 devices" in eight_devices[0] and (eight_devices[1] / "ckpt").is_dir()


def test_a_checkpoint_from_8_devices_restores_on_4_and_on_1(eight_devices):
    assert "ok restore on 4 devices" in _run(4, f"restore={eight_devices[1]}")
    sharded_checks.check_restore(eight_devices[1])  # here, on this process's one device


def test_two_processes_train_like_one_device_and_their_checkpoint_restores(tmp_path):
    with socket.socket() as probe:  # a free port for the coordinator
        probe.bind(("localhost", 0))
        port = str(probe.getsockname()[1])
    processes = [
        subprocess.Popen(
            [sys.executable, str(CHECKS), f"multiprocess={tmp_path}"],
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
    sharded_checks.check_restore(tmp_path)  # here, on this process's one device
