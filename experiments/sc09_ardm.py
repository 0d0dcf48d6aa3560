"""Train, evaluate and sample an Upscale ARDM or an OA-ARDM on spoken digits (16-bit audio).

    python experiments/sc09_ardm.py                                  # CPU default: Upscale b=4 on FSDD
    python experiments/sc09_ardm.py --model oa                       # the OA-ARDM with a logistic mixture
    python experiments/sc09_ardm.py --branch-factor 256              # S = 2 stages of 256-way digits
    python experiments/sc09_ardm.py --preset cpu-long                # 4x the steps: about half an hour
    python experiments/sc09_ardm.py --preset paper                   # the paper's SC09 model (§7.3)
    python experiments/sc09_ardm.py --help                           # every option

Every sample of a clip is a variable with 2^16 classes (D = clip length). Reports test bits per
dimension (per 16-bit sample) for the full bound and for DP policies of a few budgets per stage (planned
on the L_t tracked in training). Everything goes to --run-dir: checkpoints (a run there is resumed),
metrics.jsonl, training.png, results.json, samples/*.wav, samples.png (waveform and spectrogram of each
sample) and generation.png (the levels one sample passes through).
"""

import jax
import numpy as np

from eqdd.config import parse_config
from eqdd.data import audio, pipeline
from eqdd.runs import audio as audio_runs
from eqdd.runs import budgets, codec, session
from eqdd.runs.audio import PRESETS, Config, build
from eqdd.runs.registry import Run


def plot_clips(clips: list[tuple[str, np.ndarray]], sample_rate: int, path) -> None:
    """One row per clip: its waveform and its spectrogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 2, figsize=(11, 1.8 * len(clips)), squeeze=False)
    for (title, classes), (wave_ax, spec_ax) in zip(clips, axes, strict=True):
        signal = audio.from_classes(np.asarray(classes)).astype(np.float64) / 32768.0
        seconds = np.arange(signal.size) / sample_rate
        wave_ax.plot(seconds, signal, lw=0.5)
        wave_ax.set(ylim=(-1, 1), ylabel="amplitude", title=title)
        window = min(256, 1 << ((signal.size - 1).bit_length() - 1))  # 32 ms at 8 kHz; less for short clips
        with np.errstate(divide="ignore"):  # silent stretches have no power: -inf dB, drawn as the floor
            spec_ax.specgram(signal, NFFT=window, Fs=sample_rate, noverlap=3 * window // 4, cmap="magma")
        spec_ax.set(ylabel="Hz", title=f"{title}: spectrogram")
    for ax in axes[-1]:
        ax.set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> dict:
    config = parse_config(Config, argv, PRESETS, "cpu", __doc__.split("\n\n")[0])
    run_dir = session.start(config)
    splits = audio.load(config.dataset, config.data_dir, config.clip_length)
    print(splits.describe(), flush=True)
    model_key, train_key, eval_key, sample_key, picture_key = jax.random.split(
        jax.random.PRNGKey(config.seed), 5
    )
    model, objective = build(config, model_key)
    print(f"model: {session.count_parameters(model):,} parameters; D = {config.clip_length}", flush=True)
    batches = pipeline.iterate(
        pipeline.example_batches(splits.train, config.batch_size, config.seed), splits.train
    )
    shape = audio_runs.data_shape(config)
    state, train_seconds = session.train(config, model, objective, shape, batches, train_key)

    test = splits.test.astype(np.int32)
    test = test[: config.eval_max_chunks] if config.eval_max_chunks else test
    note = "" if splits.exact else "; FSDD, not SC09: not comparable with the paper"
    unit = "bits per 16-bit sample"
    run = Run.from_state(config, state, objective, shape)
    report, eval_seconds = session.evaluate(
        config, objective.estimate, run.model, test, run.num_steps, eval_key, unit, note
    )
    bounds = budgets.budget_bounds(run, test, eval_key, unit, note)
    drawn, calls, sample_seconds = budgets.draw_samples(run, sample_key, "clips")
    codec_order = codec.choose_run_order(run, splits.train[:2].astype(np.int32))

    seconds = {"train_this_run": train_seconds, "eval": eval_seconds, "sample": sample_seconds}
    results = session.results(
        config,
        splits.describe(),
        report,
        state,
        seconds,
        budgets=bounds,
        sample_calls=calls,
        codec_order=codec_order,
    )
    session.write_outputs(run_dir, results, {}, report.step_losses)
    if session.writes_files() and len(drawn):
        (run_dir / "samples").mkdir(exist_ok=True)
        for index, sample in enumerate(drawn[:, -1]):
            audio.write_wav(
                run_dir / "samples" / f"{index}.wav", audio.from_classes(sample), splits.sample_rate
            )
        plot_clips(
            [(f"sample {i}", sample) for i, sample in enumerate(drawn[:, -1])],
            splits.sample_rate,
            run_dir / "samples.png",
        )
        plot_clips(
            budgets.generation_stages(run, drawn[0], picture_key, 6, audio.SILENCE),
            splits.sample_rate,
            run_dir / "generation.png",
        )
        print(f"wrote {run_dir}/samples/*.wav, samples.png, generation.png")
    return results


if __name__ == "__main__":
    session.run_script(main, errors=(audio.AudioDataError,))
