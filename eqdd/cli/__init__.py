"""The `eqdd` command: use a trained run of any experiment.

    eqdd compress IN OUT [--checkpoint RUN_DIR] [--budget K]   # lossless, OA-ARDM and Upscale ARDM runs
    eqdd decompress IN OUT [--checkpoint RUN_DIR]
    eqdd sample [--checkpoint RUN_DIR] [--budget K] [--infill TEMPLATE] [--output FILE]
    eqdd evaluate [--checkpoint RUN_DIR] [--budget K] [--data FILE_OR_FOLDER]
    eqdd export OUT --checkpoint RUN_DIR                          # the run's model as one file

Without `--checkpoint`, every command but `export` uses the text8 model shipped with eqdd
([`eqdd.models`][]), and `decompress` the model an earlier release shipped when the file names it.
RUN_DIR is the run directory of any script in `experiments/` (its newest checkpoint and its EMA
parameters are used; [`eqdd.load_run`][] opens it), or a model file (`eqdd.runs.save_model`).
`eqdd compress` keeps the model each file was compressed with under `RUN_DIR/models/`, and `eqdd
decompress` finds it there by the file's fingerprint, so training the run further loses nothing.
Errors end the command with status 1 and a message; nothing is written then.
"""

import argparse
import sys

from eqdd import compression, models
from eqdd.cli import codec, use
from eqdd.config import ConfigError
from eqdd.data.files import DataError
from eqdd.runs.model_file import ModelFileError

CHECKPOINT_HELP = (
    "a run directory of experiments/text8_oaardm.py, text8_ggm.py or cifar10_ardm.py (its newest "
    "checkpoint), or a model file (default: the text8 model shipped with eqdd)"
)


def parser() -> argparse.ArgumentParser:
    """The command line of `eqdd`, every command with its options."""
    parser = argparse.ArgumentParser(prog="eqdd", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    codec.add_commands(commands, CHECKPOINT_HELP)
    use.add_commands(commands, CHECKPOINT_HELP)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run the command; exit with status 1 and a message on any error."""
    args = parser().parse_args(argv)
    try:
        if args.command != "export" and args.checkpoint is None:
            args.checkpoint = models.shipped()
        args.run(args)
    except (compression.CompressionError, ConfigError, DataError, ModelFileError) as error:
        where = f"{args.input}: " if args.command in ("compress", "decompress") else ""
        sys.exit(f"eqdd {args.command}: error: {where}{error}")
    except OSError as error:
        sys.exit(f"eqdd {args.command}: error: {error}")
