"""Typed experiment configs: presets, command-line overrides for every field, and validation.

An experiment declares a frozen dataclass whose fields are made with [`eqdd.config.option`][]; the
command line gets one `--field-name` flag per field (booleans get `--name/--no-name`), plus
`--preset`. Values are applied in order: dataclass defaults, then the preset, then the flags. Every
field's check runs, and every problem is reported at once with the flag to change.
"""

import argparse
import dataclasses
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Check = Callable[[Any], str | None]


class ConfigError(ValueError):
    """A config value is invalid; the message names each flag and what to change."""


def option(default: Any, help: str, check: Check | None = None, choices: Sequence[Any] | None = None):
    """A config field with a help text, an optional check and optional choices.

    Arguments:
        default: the default value.
        help: one line for `--help`.
        check: returns a message when the value is invalid, else `None`.
        choices: the allowed values, if any.
    """
    return dataclasses.field(default=default, metadata={"help": help, "check": check, "choices": choices})


def positive(value) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def non_negative(value) -> str | None:
    return None if value >= 0 else f"must be >= 0, got {value}"


def fraction(value) -> str | None:
    return None if 0.0 <= value < 1.0 else f"must be in [0, 1), got {value}"


def positive_list(value: str) -> str | None:
    """Comma-separated positive integers, or nothing (e.g. `--budgets 25,100`)."""
    try:
        ok = all(int(b) > 0 for b in value.split(",")) if value else True
    except ValueError:
        ok = False
    return None if ok else f"must be comma-separated positive integers, got {value!r}"


def seed_range(value) -> str | None:
    return None if 0 <= value < 2**32 else f"must be in [0, 2**32), got {value}"


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def validate(config) -> None:
    """Run every field's check and the config's own `cross_checks()`; raise one error listing all."""
    problems = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        choices = field.metadata.get("choices")
        if choices is not None and value not in choices:
            problems.append(f"{flag(field.name)} must be one of {list(choices)}, got {value!r}")
        check = field.metadata.get("check")
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{flag(field.name)} must be a finite number, got {value}")
            continue
        message = check(value) if check is not None else None
        if message:
            problems.append(f"{flag(field.name)} {message}")
    cross_checks = getattr(config, "cross_checks", None)
    if cross_checks is not None:
        problems.extend(cross_checks())
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))


def _parser(cls, presets: Mapping[str, Mapping[str, Any]], default_preset: str, description: str):
    hints = typing.get_type_hints(cls)
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False)
    parser.add_argument(
        "--preset",
        choices=sorted(presets),
        default=default_preset,
        help="a named set of defaults; flags given after it override its values. "
        + "; ".join(
            f"{name}: {', '.join(f'{k}={v}' for k, v in values.items()) or 'the defaults'}"
            for name, values in presets.items()
        ),
    )
    for field in dataclasses.fields(cls):
        kind = hints[field.name]
        kwargs: dict[str, Any] = {"help": field.metadata.get("help", ""), "default": argparse.SUPPRESS}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            optional = typing.get_origin(kind) in (typing.Union, __import__("types").UnionType)
            base = next(a for a in typing.get_args(kind) if a is not type(None)) if optional else kind
            kwargs["type"] = base
            choices = field.metadata.get("choices")
            if choices is None:
                kwargs["metavar"] = base.__name__.upper()
            else:  # the allowed values in the usage line and the help, as argparse writes them
                kwargs["choices"] = choices
                kwargs["metavar"] = "{" + ",".join(map(str, choices)) + "}"
        kwargs["help"] += f" (default: {field.default!r})"
        parser.add_argument(flag(field.name), dest=field.name, **kwargs)
    return parser


def parse_config(
    cls,
    argv: Sequence[str] | None,
    presets: Mapping[str, Mapping[str, Any]],
    default_preset: str,
    description: str,
):
    """Build `cls` from a preset and command-line flags, and validate it.

    Arguments:
        cls: the config dataclass.
        argv: the arguments (without the program name); `None` reads `sys.argv`.
        presets: preset name -> field overrides.
        default_preset: the preset used when `--preset` is not given.
        description: the program's description for `--help`.

    Returns:
        The validated config.

    Raises:
        ConfigError: listing every invalid value.
    """
    namespace = vars(_parser(cls, presets, default_preset, description).parse_args(argv))
    preset = namespace.pop("preset")
    # a flag given on the command line overrides the preset's value of the same option
    config = dataclasses.replace(cls(), **{**presets[preset], **namespace})
    validate(config)
    return config
