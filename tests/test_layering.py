"""The module map holds: the training loop knows nothing of studies, stores or the CLI; pure
statistics import no torch; only the CLI and console render."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "restudy"

MUST_NOT_IMPORT = {
    "train": {"study", "studyfile", "plan", "store", "runner", "executor", "cli", "console", "compare", "report", "rich"},
    "evaluate": {"study", "store", "runner", "cli", "rich"},
    "study": {"torch", "plan", "store", "runner", "worker", "train"},
    "studyfile": {"torch", "store", "runner", "worker", "train"},
    "plan": {"torch", "store", "runner", "worker", "train"},
    "stats": {"torch", "study", "store", "runner", "train", "compare"},
    "compare": {"torch", "store", "runner", "train", "worker"},
    "store": {"torch", "study", "train", "worker"},
    "worker": {"study", "studyfile", "store", "executor", "runner", "cli", "rich"},
    "registry": {"torch", "study", "store"},
    "data": {"study", "train", "store", "runner"},
    "models": {"study", "train", "store", "runner"},
    "methods": {"study", "train", "store", "runner"},
    "metrics": {"torch", "study", "store", "runner", "train", "compare", "plan"},
    "stacked": {"study", "studyfile", "store", "runner", "cli", "rich", "compare"},
    "tta": {"study", "store", "runner", "cli", "rich"},
    "perturb": {"study", "store", "runner", "cli", "rich"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # relative: restudy module
                names.add(mod.split(".")[0] if mod else "")
                names |= {a.name for a in node.names} if not mod else set()
            else:
                names.add(mod.split(".")[0])
                if mod.startswith("restudy."):
                    names.add(mod.split(".")[1])
    return names


@pytest.mark.parametrize("module", sorted(MUST_NOT_IMPORT))
def test_module_respects_the_map(module):
    target = PKG / f"{module}.py"
    files = [target] if target.exists() else sorted((PKG / module).glob("*.py"))
    assert files, module
    for f in files:
        bad = _imports(f) & MUST_NOT_IMPORT[module]
        assert not bad, f"{f.relative_to(PKG)} imports {sorted(bad)}"


def test_nothing_unpickles():
    for f in PKG.rglob("*.py"):
        text = f.read_text()
        assert "pickle.load" not in text and "import pickle" not in text, f
        assert "torch.load(" not in text or "weights_only=True" in text, f
