"""benchmarks/ggm_vs_oaardm.py end to end on two tiny trained runs."""

import math

from tests.scripts import TINY_RUN, load_script, write_text8

benchmark = load_script("benchmarks/ggm_vs_oaardm.py")
oaardm = load_script("experiments/text8_oaardm.py")
ggm = load_script("experiments/text8_ggm.py")


def test_benchmark_compares_both_models_at_equal_calls(tmp_path, capsys):
    write_text8(tmp_path, seed=2, length=40_000)
    common = [
        "--data-dir",
        str(tmp_path),
        *TINY_RUN,
        "--seq-len",
        "24",
        "--num-steps",
        "4",
        "--num-samples",
        "0",
    ]
    oaardm.main(
        [*common, "--run-dir", str(tmp_path / "oa"), "--batch-size", "8", "--eval-max-chunks", "4"]
        + ["--codec-orders", "0", "--chars-per-token", "2"]  # the OA-ARDM's default: pairs
    )
    ggm.main(
        [*common, "--run-dir", str(tmp_path / "ggm"), "--batch-size", "4", "--timesteps", "2"]
        + ["--eval-max-chunks", "4", "--num-infills", "0"]
    )
    results = benchmark.main(
        [
            *["--oaardm", str(tmp_path / "oa"), "--ggm", str(tmp_path / "ggm"), "--data-dir", str(tmp_path)],
            *"--num-samples 3 --eval-max-chunks 6 --judge-order 3 --no-progress --out-dir".split(),
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert "judge bpc" in out and "known words" in out
    models = [row["model"] for row in results["rows"]]
    assert models == ["OA-ARDM", "GGM", "test data"]
    oa, g, data = results["rows"]
    # T = L with the GGM's one sweep; the OA-ARDM of pairs has 12 positions, at most one call each
    assert g["network_calls"] == 24 and oa["network_calls"] == 12
    for row in (oa, g):
        assert row["bound_bpc"] > 0 and row["bound_stderr"] > 0 and len(row["samples"]) == 3
        assert all(len(sample) == 24 for sample in row["samples"])  # characters, pairs ungrouped
    for row in results["rows"]:
        assert row["judge_bpc"] > 0 and 0 <= row["unigram_entropy"] <= 5
        # NaN when a short sample has no inner word (its first and last words may be cut)
        assert math.isnan(row["known_words"]) or 0 <= row["known_words"] <= 1
    # the synthetic corpus has nine words: the test split's words are all known
    assert data["known_words"] == 1.0
    assert (tmp_path / "out" / "samples_ggm.txt").read_text().count("\n") == 3
