"""Per-source seed streams: independent, stable, paired across variants."""

from __future__ import annotations

import pytest

from restudy.errors import RestudyError
from restudy.planning.runs import plan
from restudy.planning.seeding import SOURCES, derive_seed, run_seeds
from restudy.spec.studyfile import load_study


def test_sources_have_distinct_seeds_and_are_stable():
    seeds = run_seeds(7, 3, SOURCES)
    assert len(set(seeds.values())) == len(SOURCES)
    assert seeds == run_seeds(7, 3, SOURCES)  # same inputs, same seeds (no global state)
    assert all(0 <= s < 2**63 for s in seeds.values())


def test_holding_one_source_fixed_leaves_the_others_varying():
    vary_all = [run_seeds(1, i, SOURCES) for i in range(4)]
    no_order = [run_seeds(1, i, ["init", "augment", "dropout"]) for i in range(4)]
    assert len({s["order"] for s in no_order}) == 1  # held at index 0
    assert no_order[0]["order"] == vary_all[0]["order"]
    for a, b in zip(vary_all, no_order):  # others unchanged
        assert {k: a[k] for k in ("init", "augment", "dropout")} == {k: b[k] for k in ("init", "augment", "dropout")}


def test_independent_scope_changes_streams_paired_does_not():
    assert derive_seed(1, "init", 0) != derive_seed(1, "init", 0, ("fc", "method=enorm"))
    assert derive_seed(1, "init", 0, ("fc", "a")) != derive_seed(1, "init", 0, ("fc", "b"))


def test_variants_with_the_same_seed_index_share_streams_when_paired():
    specs = plan(load_study("enorm"), "smoke")
    by_index: dict[int, set] = {}
    for s in specs:
        by_index.setdefault(s.seed_index, set()).add(tuple(sorted(s.seeds.items())))
    assert all(len(v) == 1 for v in by_index.values())
    assert len({next(iter(v)) for v in by_index.values()}) == len(by_index)


def test_bad_source_and_index():
    with pytest.raises(RestudyError, match="init"):
        derive_seed(0, "weather", 0)
    with pytest.raises(RestudyError):
        derive_seed(0, "init", -1)
