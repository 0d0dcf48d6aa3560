"""Runs: what each experiment trains (its options and presets, its model and objective) and how to load a
run back from its checkpoints. The scripts in `experiments/` drive them (train, evaluate, sample, write);
the benchmarks and the `eqdd` command load runs through them, so neither needs the scripts.

- [`text8`][eqdd.runs.text8]: what the text8 runs share (data and transformer options, evaluation);
- [`text8_oaardm`][eqdd.runs.text8_oaardm]: the OA-ARDM on text8;
- [`text8_ggm`][eqdd.runs.text8_ggm]: the Glauber Generative Model on text8;
- [`images`][eqdd.runs.images]: an OA-ARDM or Upscale ARDM on images;
- [`codec`][eqdd.runs.codec]: a run as `eqdd compress` sees it, and the order it chose for it.
"""
