"""The package reads as its data flow, and its imports point one way.

``LAYERS`` declares, once, the order of restudy's stage packages (and the few root modules), lowest
first. A unit (a root module or a stage package) may import the units of lower layers and itself,
never a unit of its own layer or above: no upward import, hence no cycle between packages, and no
per-module exception. Third-party packages stay where ``THIRD_PARTY`` confines them, a study's own
code imports restudy only through :mod:`restudy.api`, and no module reaches another's private names.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "restudy"

# Lowest first. Units of one layer are independent of each other.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_compat"),  # the exception hierarchy; deprecated import paths' helper
    ("plugins",),  # the plug-in registry: name -> factory per kind
    ("stats",),  # pure statistics (numpy, scipy)
    ("storage",),  # safe file formats, the output layout, the environment, run records, the store
    ("spec",),  # study file -> typed Study and settings
    ("planning",),  # runs (experiment x variant x seed) and their seed streams
    ("data", "models", "methods"),  # the parts a run is built from, registered by name
    ("training",),  # building a run and training it: loops, optimizers, evaluation, TTA, devices
    ("execution",),  # the runner, the local pool, Ray, workers, stacks, released weights
    ("display",),  # how numbers, tables and figures are written
    ("compare",),  # reproduced vs reported: cells, model sets, variability, leakage, verdicts
    ("claims",),  # the built-in claim kinds
    ("report",),  # Markdown, HTML, figures, results.json
    ("estimate",),  # restudy plan: calibration, cost, the plan file, pilots
    ("api",),  # the one module a study's own code imports
    ("cli",),  # the commands
    ("studies",),  # the built-in studies (through api only)
]
LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
# Importable from anywhere: the package root (its ``__version__``).
EVERYWHERE = {"__init__"}
# Old import paths kept for one release (restudy._compat); nothing inside restudy imports them.
DEPRECATED = {"registry", "metrics"}
DEPRECATED_PATHS = ("restudy.registry", "restudy.metrics", "restudy.compare.results")

ANY = None
# third-party package -> the units or modules (dotted, below restudy) that may import it.
THIRD_PARTY: dict[str, set[str] | None] = {
    "numpy": ANY,
    "torch": {"storage.env", "planning.seeding", "data", "models", "methods", "training", "execution", "estimate"}
    | {"studies"},
    "safetensors": {"storage.safeio", "data", "compare.modelsets"},
    "scipy": {"stats"},
    "pydantic": {"spec", "storage.record", "claims"},
    "pydantic_core": {"spec"},  # PydanticCustomError: a setting error with its field path
    "yaml": {"spec.studyfile", "storage.safeio"},
    "sklearn": {"data"},
    "threadpoolctl": {"compare"},  # installed with scikit-learn: one BLAS thread while comparing
    "mnist1d": {"data"},
    "PIL": {"data"},  # Pillow: decoding streamed images (data/images.py)
    "matplotlib": {"display.draw", "report.plots"},
    "jinja2": {"report"},
    "markupsafe": {"report"},
    "rich": {"cli"},
    "typer": {"cli"},
    "ray": {"execution.ray_executor"},
}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
FILES = sorted(PKG.rglob("*.py"))


def _dotted(path: Path) -> str:
    """``training/loop.py`` -> ``training.loop``; a package's ``__init__`` -> the package."""
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def _unit(path: Path) -> str:
    return _dotted(path).split(".")[0]


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path, *, runtime_only: bool = False) -> list[tuple[str, str, int]]:
    """Every import of ``path`` as (absolute module, imported name or "", line): restudy modules
    as ``restudy.x.y``. With ``runtime_only``, those under ``if TYPE_CHECKING`` are left out."""
    here = ["restudy", *path.relative_to(PKG).parent.parts]
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    if runtime_only:
        for node in ast.walk(tree):
            if _type_checking(node):
                skip |= {id(n) for n in ast.walk(node)}
    out: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out += [(module, a.name, node.lineno) for a in node.names]
    return out


def _target(module: str, name: str) -> str:
    """The restudy module an import reaches: ``from restudy import plugins`` reaches
    ``restudy.plugins``; ``from restudy.spec.study import Study`` reaches ``restudy.spec.study``."""
    candidate = f"{module}.{name}" if name else module
    parts = candidate.split(".")[1:]
    if parts and ((PKG.joinpath(*parts).with_suffix(".py")).exists() or PKG.joinpath(*parts).is_dir()):
        return candidate
    return module


def _unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_unit_has_a_layer():
    units = {_unit(f) for f in FILES} - {"__init__"} - DEPRECATED
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"declare these units in LAYERS: {missing}"
    assert not sorted(set(LAYER_OF) - units - {"api"} - units), "LAYERS names a unit that does not exist"


def test_the_package_root_holds_only_the_layers_and_a_few_modules():
    """``ls src/restudy`` reads as the pipeline: stage packages, plus at most a handful of modules."""
    root_modules = {p.stem for p in PKG.glob("*.py")} - {"__init__"}
    assert root_modules <= {"api", "errors", "plugins", "_compat"} | DEPRECATED, root_modules
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYER_OF), packages - set(LAYER_OF)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down_the_layers(path: Path):
    unit = _unit(path)
    for module, name, line in _imports(path):
        top = module.split(".")[0]
        if top == "restudy":
            target = _unit_of(_target(module, name))
            where = f"{path.relative_to(PKG)}:{line} imports {_target(module, name)}"
            if unit in DEPRECATED or _dotted(path) == "compare.results":
                assert target in ("_compat", "__init__"), where
                continue
            assert target not in DEPRECATED and _target(module, name) not in DEPRECATED_PATHS, (
                f"{where}: a deprecated path"
            )
            if target == unit or target in EVERYWHERE:
                continue
            assert LAYER_OF[target] < LAYER_OF[unit], (
                f"{where}: {unit} (layer {LAYER_OF[unit]}) may import only lower layers; "
                f"{target} is layer {LAYER_OF[target]}"
            )
        elif top not in STDLIB:
            assert top in THIRD_PARTY, f"{path.relative_to(PKG)} imports {top!r}: declare it in THIRD_PARTY"
            where_ok = THIRD_PARTY[top]
            dotted = _dotted(path)
            assert where_ok is ANY or any(dotted == w or dotted.startswith(w + ".") for w in where_ok), (
                f"{path.relative_to(PKG)} imports {top!r}, confined to {sorted(where_ok)}"
            )


def test_no_import_cycles_between_modules():
    """Module by module (imports inside functions included, ``TYPE_CHECKING`` ones not): no cycle,
    so no module needs a deferred import to be importable."""
    graph: dict[str, set[str]] = {}
    for path in FILES:
        mod = "restudy" + ("." + _dotted(path) if _dotted(path) != "__init__" else "")
        graph[mod] = {
            _target(m, n) for m, n, _ in _imports(path, runtime_only=True) if m.split(".")[0] == "restudy"
        } - {mod}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_no_module_reaches_another_modules_private_names():
    bad = []
    for path in FILES:
        for module, name, line in _imports(path):
            if module.split(".")[0] == "restudy" and name.startswith("_") and not name.startswith("__"):
                if _target(module, name) == f"{module}.{name}":  # a private module of a package is fine
                    continue
                bad.append(f"{path.relative_to(PKG)}:{line} imports {module}.{name}")
    assert not bad, bad


def test_the_built_in_studies_import_restudy_only_through_the_api():
    for path in sorted((PKG / "studies").rglob("*.py")):
        study = path.relative_to(PKG / "studies").parts[0]
        for module, name, line in _imports(path):
            if module.split(".")[0] != "restudy":
                continue
            target = _target(module, name)
            assert target == "restudy.api" or target.startswith(f"restudy.studies.{study}"), (
                f"studies/{path.relative_to(PKG / 'studies')}:{line} imports {target}; import restudy.api instead"
            )


def test_every_api_name_resolves_from_a_lower_layer_and_is_documented():
    import restudy.api as api

    assert api.__doc__ and "study's own code" in api.__doc__
    for name in api.__all__:
        target = api._EXPORTS[name]
        module = target.partition(":")[0]
        assert LAYER_OF[_unit_of(module)] < LAYER_OF["api"] or _unit_of(module) in ("errors", "plugins"), target
        assert getattr(api, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        api.nope  # noqa: B018


def test_importing_the_api_loads_neither_torch_nor_matplotlib():
    """A study module that only registers claim kinds pays for nothing else; a worker importing a
    study's model module does not load matplotlib or the comparison through the API."""
    code = (
        "import sys\n"
        "from restudy.api import register, register_claim_kind, ClaimBase, REPRODUCED\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'scipy', 'rich', 'typer'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env_with_src())
    assert out.stdout.strip() == "['scipy']"  # claim kinds register with the comparison's verdict types


def _env_with_src() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PKG.parent)}


@pytest.mark.parametrize(
    "old, name, new",
    [
        ("restudy.registry", "register", "restudy.api"),
        ("restudy.registry", "get", "restudy.plugins"),
        ("restudy.claims", "register_claim_kind", "restudy.api"),
        ("restudy.claims", "ClaimBase", "restudy.api"),
        ("restudy.compare.results", "REPRODUCED", "restudy.api"),
        ("restudy.compare.results", "ClaimResult", "restudy.api"),
        ("restudy.stats", "paired_difference", "restudy.api"),
        ("restudy.stats", "bca_interval", "restudy.stats.intervals"),
        ("restudy.metrics", "variability", "restudy.api"),
    ],
)
def test_old_import_paths_still_work_with_a_warning_naming_the_new_one(old: str, name: str, new: str):
    module = importlib.import_module(old)
    with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} is deprecated.*import it from {new}"):
        value = getattr(module, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert value is getattr(importlib.import_module(new), name)


def test_the_old_from_import_form_warns_at_the_users_line(tmp_path: Path):
    (tmp_path / "old_style_study.py").write_text(
        "from restudy.registry import register\n"
        "from restudy.claims import ClaimBase\n"
        "from restudy.stats import summarize\n"
    )
    code = (
        "import warnings, sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    import old_style_study\n"
        "print([(x.filename.rsplit('/', 1)[-1], x.lineno) for x in w if x.category is DeprecationWarning])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env_with_src())
    assert out.stdout.strip() == "[('old_style_study.py', 1), ('old_style_study.py', 2), ('old_style_study.py', 3)]"


def test_restudy_itself_never_uses_a_deprecated_path():
    """Running a smoke comparison and importing every module raises no DeprecationWarning of ours."""
    code = (
        "import warnings, pkgutil, importlib, restudy\n"
        "warnings.filterwarnings('error', message='restudy', category=DeprecationWarning)\n"
        "old = ('restudy.registry', 'restudy.metrics', 'restudy.compare.results')\n"
        "for m in pkgutil.walk_packages(restudy.__path__, 'restudy.'):\n"
        "    if m.name not in old and 'ray_executor' not in m.name and not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env_with_src())
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_every_module_states_its_concept_and_stays_small():
    """Each module opens with a docstring and holds one concept: no module over 600 lines."""
    for path in FILES:
        text = path.read_text()
        doc = ast.get_docstring(ast.parse(text))
        assert doc and doc.strip(), f"{path.relative_to(PKG)} has no module docstring"
        assert len(text.splitlines()) <= 600, f"{path.relative_to(PKG)}: {len(text.splitlines())} lines"


def test_docstrings_cite_sources_a_reader_has():
    """The paper, the reproduction report or a file in this repository: never notes kept elsewhere."""
    # The names are put together here so that this file does not name them itself.
    outside = tuple(f"{n}.md" for n in ("originals", "perf", "style", "tooling")) + ("shared" + "/research",)
    for path in FILES:
        text = path.read_text()
        assert not any(o in text for o in outside), f"{path.relative_to(PKG)} cites notes outside the repository"


# Modules whose tests live in a file named after another concept.
TESTED_IN = {
    "stacked_model": "test_stacked.py",
    "loop": "test_train.py",
    "loop_stacked": "test_train.py",
    "constraints": "test_settings.py",
    "declarations": "test_settings.py",
    "part_checks": "test_parts.py",
    "methods": "test_enorm.py",
    "study": "test_studyfile.py",
    "values": "test_studyfile.py",
    "experiments": "test_studyfile.py",
    "claim_base": "test_claim_plugin.py",
    "reported": "test_studyfile.py",
    "tta_strategies": "test_tta.py",
    "base": "test_claim_plugin.py",
    "cka": "test_metrics.py",
    "variability": "test_metrics.py",
    "planfile": "test_cost.py",
    "calibrate": "test_cost.py",
    "pilots": "test_cost.py",
    "runs": "test_plan.py",
    "plugins": "test_registry.py",
    "api": "test_api.py",
    "_compat": "test_layering.py",
    "ray_executor": "test_executor_ray.py",
    "decisions": "test_stats.py",
    "draw": "test_report.py",
    "tables": "test_report.py",
}


# Packages tested as a whole (test_<package>.py or the file named here); the modules of the other
# stage packages and of the root each have their own test file.
PACKAGES_TESTED_WHOLE = {
    "claims": "test_claim_plugin.py",
    "compare": "test_compare.py",
    "report": "test_report.py",
    "stats": "test_stats.py",
    "data": "test_data.py",
    "models": "test_models.py",
    "methods": "test_enorm.py",
    "cli": "test_cli.py",
    "studies": "test_enorm.py",
}


def test_tests_mirror_the_modules():
    """Each module of a stage package (and of the root) has a test file named after it (or listed
    above); the packages above have theirs as a whole."""
    tests = Path(__file__).parent
    assert all((tests / f).exists() for f in PACKAGES_TESTED_WHOLE.values())
    stems = {p.stem for p in PKG.glob("*/*.py") if p.stem != "__init__" and p.parent.name not in PACKAGES_TESTED_WHOLE}
    stems |= {p.stem for p in PKG.glob("*.py")} - {"__init__"} - DEPRECATED
    missing = sorted(
        s for s in stems if not (tests / f"test_{s}.py").exists() and not (tests / TESTED_IN.get(s, "-")).exists()
    )
    assert not missing, f"add tests/test_<module>.py for {missing}"


def test_reading_and_comparing_need_no_torch():
    """Loading a study, the store and the statistics import neither torch nor a renderer. (Planning
    checks part names against the registry, whose built-in models and data import torch.)"""
    code = (
        "import sys\n"
        "import restudy.stats.variability, restudy.storage.store, restudy.storage.record, restudy.compare\n"
        "from restudy.spec.studyfile import load_study\n"
        "for name in ('enorm', 'nondeterminism'):\n"
        "    load_study(name)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'matplotlib', 'rich', 'typer'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env_with_src())
    assert out.stdout.strip() == "[]"


def test_nothing_unpickles():
    for f in FILES:
        text = f.read_text()
        assert "pickle.load" not in text and "import pickle" not in text, f
        assert "torch.load(" not in text or "weights_only=True" in text, f


def test_settings_are_read_typed_outside_the_settings_module():
    """The run path reads a run's settings through its RunSettings (``engine.batch_size``,
    ``part_args("model")``), never by name from a dict: a renamed setting is then one error at
    import, not a silent default somewhere."""
    import re

    lookups = re.compile(
        r"\.settings(\.values)?\[|\.settings(\.values)?\.get\(|\bvalue\(\s*\w*\.?settings|part_args\(\s*\w*\.?settings"
    )
    bad = [
        f"{path.relative_to(PKG)}:{i}"
        for path in FILES
        if path.relative_to(PKG).as_posix() != "spec/settings.py"
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if lookups.search(line)
    ]
    assert not bad, bad
