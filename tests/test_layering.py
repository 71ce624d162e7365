"""The module map holds (style.md §3): each module imports only what its row allows, third-party
packages stay where they are confined, and nothing unpickles.

Every module and package under ``src/restudy`` has one row in ``MAY_IMPORT``; a module without a row,
or an import outside its row, fails. Adding a module is adding one line.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "restudy"

# Allowed everywhere: the exception hierarchy and the package root (its ``__version__``).
EVERYWHERE = {"errors", "__init__"}
ENGINE = {
    "artifacts",
    "batches",
    "constraints",
    "data",
    "devices",
    "env",
    "evaluate",
    "executor",
    "executor_ray",
    "methods",
    "models",
    "optim",
    "perturb",
    "plan",
    "record",
    "registry",
    "runner",
    "safeio",
    "seeding",
    "settings",
    "stacked",
    "stacked_model",
    "store",
    "study",
    "studyfile",
    "train",
    "train_stacked",
    "tta",
    "worker",
}

# module or package -> the restudy modules it may import (style.md §3 "may import", plus what the code
# legitimately needs today).
MAY_IMPORT: dict[str, set[str]] = {
    "__init__": set(),
    "errors": set(),
    "artifacts": set(),
    "safeio": set(),
    "study": {"artifacts", "registry", "crossref"},  # registry: claim kinds and views are registered parts
    "crossref": {"study"},
    "studyfile": {"study", "safeio", "registry"},
    "settings": {"constraints"},
    "constraints": {"tta", "registry"},  # part names come from the registry
    "numbers": set(),
    "cka": set(),
    "registry": set(),
    "seeding": set(),
    "devices": set(),
    "env": {"devices"},
    "data": {"registry", "safeio"},
    "batches": {"seeding", "registry"},
    "models": {"registry"},
    "methods": {"registry"},
    "optim": {"registry"},
    "perturb": set(),
    "tta": set(),
    "train": {"batches", "seeding", "evaluate", "optim", "record", "devices"},
    "train_stacked": {"batches", "evaluate", "optim", "train"},
    "evaluate": {"batches", "registry"},
    "metrics": {"cka", "stats"},
    "stats": set(),
    "plan": {"study", "studyfile", "seeding", "settings", "artifacts", "registry"},
    "record": {"env", "artifacts"},
    "build": {
        "plan",
        "registry",
        "settings",
        "data",
        "models",
        "methods",
        "optim",
        "batches",
        "seeding",
        "perturb",
        "tta",
        "env",
        "train",
        "devices",
    },
    "worker": {
        "plan",
        "registry",
        "data",
        "models",
        "optim",
        "train",
        "evaluate",
        "seeding",
        "env",
        "record",
        "safeio",
        "artifacts",
        "batches",
        "perturb",
        "settings",
        "tta",
        "build",
    },
    "stacked_model": set(),
    "stacked": {
        "stacked_model",
        "plan",
        "registry",
        "data",
        "train",
        "train_stacked",
        "evaluate",
        "seeding",
        "record",
        "safeio",
        "artifacts",
        "batches",
        "worker",
        "settings",
        "build",
        "optim",
    },
    "executor": {"plan", "record", "worker", "stacked", "seeding", "devices", "build"},
    # Ray runs the worker (or a stack) in a task and writes the returned files as the local pool would.
    "executor_ray": {"plan", "record", "executor", "worker", "stacked", "safeio", "artifacts"},
    "store": {"record", "safeio", "artifacts"},
    "runner": {
        "plan",
        "devices",
        "executor",
        "store",
        "record",
        "env",
        "study",
        "data",
        "settings",
        "registry",
        "build",
        "studyfile",
    },
    # A claim kind holds its schema, evaluator and figure: it uses compare's context and report's drawing.
    "claims": {"study", "stats", "metrics", "registry", "artifacts", "compare", "report", "numbers"},
    "compare": {"study", "record", "stats", "metrics", "artifacts", "registry", "claims", "safeio", "tta", "numbers"},
    "report": {"compare", "record", "env", "safeio", "study", "stats", "metrics", "claims", "artifacts", "numbers"},
    "export": {"record", "store"},
    # Cost planning: calibrate builds and times runs the normal way; cost runs the driver's checks as it does.
    "cost": {"plan", "runner", "executor", "calibrate", "build"},
    "calibrate": {
        "plan",
        "build",
        "stacked",
        "train",
        "train_stacked",
        "evaluate",
        "worker",
        "store",
        "data",
        "settings",
        "tta",
        "safeio",
        "artifacts",
    },
    "planfile": {"cost", "plan", "safeio"},
    "pilots": {"plan", "compare", "record", "store", "artifacts"},
    "console": set(),
    "weights": {"artifacts", "build", "env", "evaluate", "plan", "record", "registry", "safeio", "seeding", "settings"},
    "cli": ENGINE
    | {"compare", "claims", "report", "console", "export", "build", "weights", "cost", "planfile", "pilots"},
    # A study's own parts: models, data sets, transforms and claim kinds (with their figures); methods:
    # the deconvolution architectures build their layers from restudy.methods.deconv.
    "studies": {"registry", "models", "methods", "batches", "data", "claims", "compare", "stats", "numbers", "report"},
}

ANY = None
# third-party package -> the modules that may import it (ANY: not confined). A new dependency needs a row.
THIRD_PARTY: dict[str, set[str] | None] = {
    "numpy": ANY,
    "torch": {
        "batches",
        "data",
        "devices",
        "env",
        "evaluate",
        "executor",
        "methods",
        "models",
        "optim",
        "perturb",
        "seeding",
        "stacked",
        "stacked_model",
        "train",
        "train_stacked",
        "tta",
        "worker",
        "build",
        "studies",
        "weights",
        "cost",
        "calibrate",
    },
    "safetensors": {"safeio", "data", "compare"},
    "scipy": {"stats", "metrics"},
    "pydantic": {"study", "studyfile", "claims", "record"},  # record: the run.json schema
    "pydantic_core": {"study"},  # PydanticCustomError: a setting error with its field path
    "yaml": {"studyfile", "safeio"},
    "sklearn": {"data"},
    "threadpoolctl": {"compare"},  # installed with scikit-learn: one BLAS thread while comparing
    "mnist1d": {"data"},
    "PIL": {"data"},  # Pillow: decoding streamed images (data/images.py)
    "matplotlib": {"report"},
    "jinja2": {"report"},
    "markupsafe": {"report"},
    "rich": {"cli", "console"},
    "typer": {"cli"},
    "ray": {"executor_ray"},
    "mlflow": {"export"},
}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def _unit(path: Path) -> str:
    """The row a file belongs to: a top-level module's name, or its package's."""
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> set[str]:
    """Top-level names imported by ``path``: restudy modules by their name, others by their package."""
    here = list(path.relative_to(PKG).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                names.add(parts[1] if parts[0] == "restudy" and len(parts) > 1 else parts[0])
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".") if node.module else []
            if node.level:  # relative: resolve against this file's package
                full = here[: len(here) - node.level + 1] + parts
                names |= {full[0]} if full else {a.name for a in node.names}
            elif parts[0] == "restudy":
                names.add(parts[1] if len(parts) > 1 else "__init__")
            else:
                names.add(parts[0])
    return {"__init__" if n == "__version__" else n for n in names}


FILES = sorted(PKG.rglob("*.py"))


def test_every_module_has_a_row():
    missing = sorted({_unit(f) for f in FILES} - set(MAY_IMPORT))
    assert not missing, f"declare these modules in MAY_IMPORT (style.md §3): {missing}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_module_imports_only_what_its_row_allows(path: Path):
    unit = _unit(path)
    allowed = MAY_IMPORT.get(unit, set()) | EVERYWHERE | {unit}
    imported = _imports(path) - STDLIB
    ours = {n for n in imported if n in MAY_IMPORT or (PKG / f"{n}.py").exists() or (PKG / n).is_dir()}
    bad = sorted(ours - allowed)
    assert not bad, f"{path.relative_to(PKG)} ({unit}) imports {bad}; its row allows {sorted(allowed)}"
    for package in sorted(imported - ours):
        assert package in THIRD_PARTY, f"{path.relative_to(PKG)} imports {package!r}: declare it in THIRD_PARTY"
        where = THIRD_PARTY[package]
        assert where is ANY or unit in where, (
            f"{path.relative_to(PKG)} imports {package!r}, confined to {sorted(where)}"
        )


# Modules whose tests live in another module's file today; every other module has tests/test_<module>.py.
TESTED_IN = {
    "stacked_model": "test_stacked.py",
    "train_stacked": "test_train.py",
    "constraints": "test_settings.py",
    "methods": "test_enorm.py",
    "studies": "test_enorm.py",
    "study": "test_studyfile.py",
    "claims": "test_claim_plugin.py",
    "cka": "test_metrics.py",
    "planfile": "test_cost.py",
    "calibrate": "test_cost.py",
    "pilots": "test_cost.py",
}


def test_tests_mirror_the_modules():
    tests = Path(__file__).parent
    missing = sorted(
        unit
        for unit in {_unit(f) for f in FILES} - {"__init__"}
        if not (tests / f"test_{unit}.py").exists() and not (tests / TESTED_IN.get(unit, "-")).exists()
    )
    assert not missing, f"add tests/test_<module>.py for {missing}"


def test_reading_and_comparing_need_no_torch():
    """Loading a study, the store and the statistics import neither torch nor a renderer. (Planning
    checks part names against the registry, whose built-in models and data import torch.)"""
    code = (
        "import sys\n"
        "import restudy.stats, restudy.metrics, restudy.store, restudy.record, restudy.compare\n"
        "from restudy.studyfile import load_study\n"
        "for name in ('enorm', 'nondeterminism'):\n"
        "    load_study(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'rich', 'typer'}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(PKG.parent)},
    )
    assert out.stdout.strip() == "[]"


def test_nothing_unpickles():
    for f in FILES:
        text = f.read_text()
        assert "pickle.load" not in text and "import pickle" not in text, f
        assert "torch.load(" not in text or "weights_only=True" in text, f
