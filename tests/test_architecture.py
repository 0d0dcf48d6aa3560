"""The house's rules on who imports whom (issue 13), read from the source: samplers do not import
objectives, the training engine imports neither the experiment harness nor the command line, and
nothing outside `eqdd.cli` imports `eqdd.cli`."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eqdd"


def _imports(path: Path, package: tuple[str, ...]) -> set[str]:
    """The `eqdd` modules a file of `package` imports, as absolute names (`from eqdd import x` gives
    `eqdd` and `eqdd.x`; relative imports are resolved against `package`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] if node.level else ())
            module = ".".join(part for part in (base, node.module or "") if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return {name for name in names if name == "eqdd" or name.startswith("eqdd.")}


def _package(path: Path) -> tuple[str, ...]:
    """The package a file belongs to (for `eqdd/samplers/oa.py` and `eqdd/samplers/__init__.py`: both
    `("eqdd", "samplers")`)."""
    return path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]


def _violations(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    files = sorted((PACKAGE / folder).rglob("*.py")) if folder else sorted(PACKAGE.rglob("*.py"))
    return [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in files
        for name in sorted(_imports(path, _package(path)))
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


@pytest.mark.parametrize(
    "folder,forbidden",
    [
        ("samplers", ("eqdd.objectives",)),
        ("train", ("eqdd.runs", "eqdd.cli")),
        ("processes", ("eqdd.denoisers", "eqdd.objectives", "eqdd.samplers", "eqdd.train", "eqdd.runs")),
    ],
)
def test_a_room_does_not_import_what_it_must_not(folder, forbidden):
    assert _violations(folder, forbidden) == []


def test_only_the_command_line_imports_the_command_line():
    outside = [v for v in _violations("", ("eqdd.cli",)) if not v.startswith("eqdd/cli/")]
    assert outside == []


def test_the_checks_see_an_import_when_there_is_one(tmp_path):
    # The reader itself: every import form, relative ones resolved against the file's package.
    path = tmp_path / "module.py"
    path.write_text(
        "import eqdd.objectives.ardm\nfrom eqdd import cli\nfrom . import sibling\n"
        "from ..objectives import x\nimport numpy\n"
    )
    assert _imports(path, ("eqdd", "samplers")) == {
        "eqdd.objectives.ardm",
        "eqdd",
        "eqdd.cli",
        "eqdd.samplers",
        "eqdd.samplers.sibling",
        "eqdd.objectives",
        "eqdd.objectives.x",
    }
