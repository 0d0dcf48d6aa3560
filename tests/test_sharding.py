"""Data-parallel training with shard_map on simulated CPU devices (each check in a fresh process,
since the device count is fixed when JAX starts)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = Path(__file__).with_name("sharded_checks.py")


def _run(devices: int, *args: str) -> str:
    env = dict(os.environ)
    # A hang in a collective fails in 60 s instead of blocking the suite.
    env["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={devices} "
        "--xla_cpu_collective_call_terminate_timeout_seconds=60"
    )
    env["JAX_PLATFORMS"] = "cpu"
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
