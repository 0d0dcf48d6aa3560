"""benchmarks/text8_recipes.py and benchmarks/profile_step.py on tiny models."""

import json

import pytest

from tests.scripts import load_script

recipes = load_script("benchmarks/text8_recipes.py")
profile_step = load_script("benchmarks/profile_step.py")
TINY = "--width 16 --depth 1 --num-heads 2 --mlp-width 32 --seq-len 32 --batch-size 4 --warmup-steps 2"


def test_recipes_train_for_the_budget_and_write_a_paired_table(text8_dir, tmp_path, capsys):
    out = tmp_path / "out"
    results = recipes.main(
        [
            *f"--data-dir {text8_dir} --out-dir {out} --minutes 0.02 --points 2 --eval-chunks 12".split(),
            "--recipes", "conv7-cosine-mix", "--extra", TINY,
        ]
    )  # fmt: skip
    assert [r["name"] for r in results] == ["conv7-cosine-mix"]
    for r in results:
        assert len(r["points"]) == 2 and r["points"][0]["step"] < r["points"][1]["step"] == r["steps"]
        assert r["points"][0]["minutes"] < r["points"][1]["minutes"] and r["tokens_per_s"] > 0
        assert 0 < r["points"][-1]["bpc"] < 10
    # the recipe's flags, the extra ones last, reached the config
    config = recipes._config(results[0]["flags"], 10, str(tmp_path))
    assert (config.lr_schedule, config.conv_width, config.ce_weight, config.width) == ("cosine", 7, 1.0, 16)
    table = (out / "recipes.md").read_text()
    assert "| conv7-cosine-mix |" in table and "| +0.0000 ± 0.0000 |" in table  # paired with itself
    saved = json.loads((out / "recipes.json").read_text())
    assert len(saved["recipes"][0]["per_chunk"]) == 12 and (out / "recipes.png").stat().st_size > 0
    assert "conv7-cosine-mix: step" in capsys.readouterr().out


def test_recipes_can_train_a_fixed_number_of_steps(text8_dir, tmp_path):
    out = tmp_path / "out"
    flags = f"--data-dir {text8_dir} --out-dir {out} --steps 6 --points 2 --eval-chunks 12"
    results = recipes.main([*flags.split(), "--recipes", "conv7-cosine-mix,mix-lr6e-3", "--extra", TINY])
    assert [r["steps"] for r in results] == [6, 6] and [p["step"] for p in results[1]["points"]] == [3, 6]
    assert (out / "recipes.md").read_text().startswith("6 steps per recipe")
    assert json.loads((out / "recipes.json").read_text())["steps"] == 6
    # one count per recipe (equal compute for arms whose steps cost differently)
    results = recipes.main(
        [
            *flags.replace("--steps 6", "--steps 4,6").split(),
            "--recipes",
            "conv7-cosine-mix,mix-lr6e-3",
            "--extra",
            TINY,
        ]
    )
    assert [r["steps"] for r in results] == [4, 6] and [p["step"] for p in results[0]["points"]] == [2, 4]
    assert (out / "recipes.md").read_text().startswith("4/6 steps per recipe")
    assert json.loads((out / "recipes.json").read_text())["steps"] == [4, 6]
    with pytest.raises(SystemExit, match="3 counts for 2 recipes"):
        recipes.main(
            [*flags.replace("--steps 6", "--steps 4,6,8").split(), "--recipes", "conv7-cosine-mix,mix-lr6e-3"]
        )


def test_recipes_refuse_unknown_names(tmp_path):
    with pytest.raises(SystemExit, match="unknown recipes"):
        recipes.main(["--recipes", "nonsense", "--out-dir", str(tmp_path)])


def test_profile_groups_the_step_ops_by_kind(capsys):
    kinds = profile_step.main(["--steps", "1", *TINY.split()])
    assert kinds and all(ms >= 0 for ms in kinds.values())
    out = capsys.readouterr().out
    assert "tokens/s" in out and "share" in out
