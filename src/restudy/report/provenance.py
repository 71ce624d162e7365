"""Settings with their provenance, shown once: the settings every experiment shares in one table,
then per experiment only what differs; sources written so a reader can follow them.

A source is the paper's section, table or figure, the original code's file, or a word on where the
value was chosen (a scale's settings, a rule, restudy's default). Document ids (``rep2022``) are
expanded to their titles at first use; references to this repository's research notes are dropped
(readers do not have them). Emphasis (``cls="differs"``) marks only a value that differs from the
paper-scale value a source gave, or a command-line override; ``assumed`` is a plain word.

Imports spec, display and the plug-in registry (a model's display name; pure string building otherwise).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from .. import plugins
from ..display.numbers import MISSING
from ..display.tables import Cell, cell, table, value_text
from ..errors import RestudyError
from ..spec.settings import RunSettings
from ..spec.study import Study
from ..spec.values import PROVENANCE_MEANING

LEGEND = (
    "Provenance: "
    + "; ".join(f"{kind}: {meaning}" for kind, meaning in PROVENANCE_MEANING.items())
    + ". Highlighted: a value that differs from the one the paper's protocol uses, or a command-line override."
)
_NOTES = re.compile(r"\s*\((?:[^()]*?;\s*)?[\w./-]*originals\.md[^()]*\)|,?\s*[\w./-]*originals\.md(?:\s*§[\d.]+)?")
_SCALE_RULE = re.compile(r"^scales\.(\w+)\.rules\[(\d+)\]")
_EXPERIMENT = re.compile(r"^experiments\[([^\]]+)\](?:\.rules\[(\d+)\]|\.settings)")
MAX_VALUES = 6


def human_source(source: str, docs: dict[str, str] | None = None, seen: set[str] | None = None) -> str:
    """A setting's or claim's source as a reader can follow it.

    Args:
        source: as the plan or the study wrote it (``scale small``, ``scales.small.rules[0]``,
            ``restudy default``, ``rep2022 §3.4``, ``train.py`` ...).
        docs: document id → title; an id is expanded to ``id (title)`` the first time it is met.
        seen: ids already expanded (updated in place).
    """
    text = _NOTES.sub("", source or "").strip().strip(";,").strip()
    parts = [p.strip() for p in text.split("; base:")]
    out = []
    for p in parts:
        if m := _SCALE_RULE.match(p):
            p = f"a rule of the {m.group(1)} scale (#{int(m.group(2)) + 1})"
        elif m := _EXPERIMENT.match(p):
            p = f"experiment {m.group(1)}" + (f", rule #{int(m.group(2)) + 1}" if m.group(2) else "")
        elif m := re.fullmatch(r"scale (\w+) \(([^)]+)\)", p):
            p = f"chosen for the {m.group(1)} scale (experiment {m.group(2)})"
        elif p.startswith("scale "):
            p = f"chosen for the {p[6:]} scale"
        elif p == "restudy default":
            p = "restudy's default (the paper does not say)"
        elif p.startswith("restudy default: "):
            p = f"restudy's default (the paper does not say): {p[len('restudy default: ') :]}"
        elif p == "defaults":
            p = "the study's defaults"
        out.append(p)
    text = out[0] + "".join(f" (base: {x})" for x in out[1:] if x)
    if docs:
        seen = set() if seen is None else seen
        for doc_id, title in docs.items():
            if doc_id not in seen and re.search(rf"\b{re.escape(doc_id)}\b", text):
                text = re.sub(rf"\b{re.escape(doc_id)}\b", f"{doc_id} ({title})", text, count=1)
                seen.add(doc_id)
    return text or MISSING


_RULE_TEXT = re.compile(r"a rule of the (\w+) scale \(#(\d+)\)")


def _join_sources(sources: list[str], shown: int = 2) -> str:
    """Distinct sources joined; a scale's rules become one phrase (``rules #1-#5 of the small
    scale``); beyond ``shown`` others, a count."""
    rules: dict[str, list[int]] = {}
    rest: list[str] = []
    for s in dict.fromkeys(sources):
        if m := _RULE_TEXT.fullmatch(s):
            rules.setdefault(m.group(1), []).append(int(m.group(2)))
        else:
            rest.append(s)
    out = []
    for scale, ns in rules.items():
        ns = sorted(set(ns))
        if len(ns) == 1:
            out.append(f"a rule of the {scale} scale (#{ns[0]})")
        else:
            contiguous = ns == list(range(ns[0], ns[-1] + 1))
            which = f"#{ns[0]}–#{ns[-1]}" if contiguous else ", ".join(f"#{n}" for n in ns)
            out.append(f"rules {which} of the {scale} scale")
    out += rest[:shown]
    text = "; ".join(out)
    return text + (f"; and {len(rest) - shown} more" if len(rest) > shown else "")


def _entry_key(e: dict[str, Any]) -> tuple[str, str, str]:
    return value_text(e.get("value")), str(e.get("provenance", "")), str(e.get("source", ""))


def _differs(name: str, values: Sequence[str], provs: Sequence[str], paper: dict[str, set[str]]) -> bool:
    """A value differs from the paper-scale value a source gave (not when that one is assumed too),
    or it is a command-line override."""
    del provs
    ref = paper.get(name)
    return bool(ref) and any(v not in ref for v in values)


def _sort_key(text: str) -> tuple[int, float, str]:
    try:
        return 0, float(text), ""
    except ValueError:
        return 1, 0.0, text


def _row(
    name: str,
    entries: list[dict[str, Any]],
    paper: dict[str, set[str]],
    docs: dict[str, str],
    seen: set[str],
) -> list[Cell]:
    values = list(dict.fromkeys(value_text(e.get("value")) for e in entries))
    provs = list(dict.fromkeys(str(e.get("provenance", "")) for e in entries))
    sources = list(dict.fromkeys(str(e.get("source", "")) for e in entries if e.get("source")))
    overridden = any("command-line" in s for s in sources)
    differs = overridden or _differs(name, values, provs, paper)
    value = values[0] if len(values) == 1 else "by variant: " + ", ".join(values[:MAX_VALUES])
    if len(values) > MAX_VALUES:
        value += f", … ({len(values)} values)"
    if differs and paper.get(name) and not overridden:
        ref = sorted(paper[name], key=_sort_key)
        value += f" (paper: {', '.join(ref[:MAX_VALUES])}{', …' if len(ref) > MAX_VALUES else ''})"
    prov = provs[0] if len(provs) == 1 else " / ".join(provs)
    src = _join_sources([human_source(s, docs, seen) for s in sources])
    cls = "differs" if differs else ""
    return [cell(name, cls), cell(value, cls), cell(prov), cell(src or MISSING)]


def _split_paper(text: str) -> tuple[str, str]:
    """``"crop (paper: flip_crop)"`` → ``("crop", "flip_crop")``; no paper part → ``(text, "")``."""
    if text.endswith(")") and " (paper: " in text:
        value, _, paper = text[:-1].rpartition(" (paper: ")
        return value, paper
    return text, ""


def fold_children(rows: list[list[Cell]], lead: int = 0) -> list[list[Cell]]:
    """Folds a dotted setting into its parent's row when both have the same provenance:
    ``augment = crop`` and ``augment.pad = 1`` read as one row ``crop, pad 1``; the paper's
    values merge the same way and a child's own source is kept after the parent's. A highlighted
    child highlights the merged row.

    Args:
        rows: ``[*lead cells, name, value, provenance, source]`` rows.
        lead: how many cells come before the setting's name (the experiment column: 1).
    """
    out: list[list[Cell]] = []
    parents: dict[tuple[str, ...], list[Cell]] = {}
    for r in rows:
        head, (name, value, prov, src) = r[:lead], r[lead : lead + 4]
        parent_name, _, child = name["text"].rpartition(".")
        parent = parents.get((*(c["text"] for c in head), parent_name)) if parent_name else None
        if parent is None or parent[lead + 2]["text"] != prov["text"]:
            row = list(r)
            parents[(*(c["text"] for c in head), name["text"])] = row
            out.append(row)
            continue
        (pv, pp), (cv, cp) = _split_paper(parent[lead + 1]["text"]), _split_paper(value["text"])
        paper = "; ".join(p for p in (pp, f"{child} {cp}" if cp else "") if p)
        cls = parent[lead]["cls"] or value["cls"]
        parent[lead] = cell(parent[lead]["text"], cls)
        parent[lead + 1] = cell(f"{pv}, {child} {cv}" + (f" (paper: {paper})" if paper else ""), cls)
        if src["text"] not in parent[lead + 3]["text"] and src["text"] != MISSING:
            parent[lead + 3] = cell(f"{parent[lead + 3]['text']}; {child}: {src['text']}")
    return out


def paper_values(paper_settings: dict[str, dict[str, list[Any]]] | None) -> dict[str, dict[str, set[str]]]:
    """experiment → setting → the values the paper scale uses where a source (not an assumption)
    gave them."""
    out: dict[str, dict[str, set[str]]] = {}
    for exp, names in (paper_settings or {}).items():
        for name, entries in names.items():
            vals = {value_text(e["value"]) for e in entries if e.get("provenance") != "assumed"}
            if vals:
                out.setdefault(exp, {})[name] = vals
    return out


def settings_views(
    study: Study,
    settings: dict[str, dict[str, dict[str, dict[str, Any]]]],
    paper_settings: dict[str, dict[str, list[Any]]] | None = None,
) -> dict[str, Any]:
    """The settings of every run, once: each setting's usual entry (the one most experiments
    use) in one table, restudy's own defaults in one line, then per experiment only what differs.

    Args:
        study: the study (its documents expand source ids).
        settings: experiment → variant → setting → {value, provenance, source}.
        paper_settings: experiment → setting → [{value, provenance}] at paper scale, to mark the
            values that differ from it.

    Returns:
        ``{"legend", "common": Table, "defaults": str, "differences": Table (experiment,
        setting, ...), "experiments": [{"experiment",
        "n_variants", "table"}], "n_assumed", "n_settings", "n_differs"}``.
    """
    docs = {d.id: d.title for d in study.documents}
    seen: set[str] = set()
    paper = paper_values(paper_settings)
    per_exp: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for exp, variants in settings.items():
        names = per_exp.setdefault(exp, {})
        for s in variants.values():
            for n, e in s.items():
                names.setdefault(n, []).append(e)
    keys = {
        exp: {n: tuple(sorted({_entry_key(e) for e in es})) for n, es in names.items()}
        for exp, names in per_exp.items()
    }
    all_names = sorted({n for names in per_exp.values() for n in names})
    usual: dict[str, tuple] = {}
    for n in all_names:
        counts = Counter(k[n] for k in keys.values() if n in k)
        key, count = counts.most_common(1)[0]
        if count * 2 > len(per_exp) or len(per_exp) == 1:
            usual[n] = key
    common_rows, defaults = [], []
    for n in usual:
        users = [e for e, k in keys.items() if k.get(n) == usual[n]]
        entries = per_exp[users[0]][n]
        if all(str(e.get("source", "")).startswith("restudy default") for e in entries) and len(usual[n]) == 1:
            defaults.append(f"{n} {value_text(entries[0].get('value'))}")
            continue
        # the paper's values of the experiments that use this entry
        ref = {n: {v for e in users for v in paper.get(e, {}).get(n, set())}}
        common_rows.append(_row(n, entries, ref if ref[n] else {}, docs, seen))
    common_rows = fold_children(common_rows)
    exps = []
    for exp, names in per_exp.items():
        rows = fold_children(
            [_row(n, names[n], paper.get(exp, {}), docs, seen) for n in sorted(names) if keys[exp][n] != usual.get(n)]
        )
        exps.append(
            {
                "experiment": exp,
                "n_variants": len(settings[exp]),
                "table": table(["setting", "value", "provenance", "source"], rows) if rows else None,
            }
        )
    n_differs = sum(r[0]["cls"] == "differs" for r in common_rows) + sum(
        r[0]["cls"] == "differs" for e in exps if e["table"] for r in e["table"]["rows"]
    )
    assumed = {
        n for names in per_exp.values() for n, es in names.items() if any(e.get("provenance") == "assumed" for e in es)
    }
    differ = [e for e in exps if e["table"]]
    diff_rows = [
        [cell(e["experiment"] + (f" ({e['n_variants']} variants)" if e["n_variants"] > 1 else "")), *r]
        for e in differ
        for r in e["table"]["rows"]
    ]
    return {
        "legend": LEGEND,
        "common": table(["setting", "value", "provenance", "source"], common_rows),
        "differences": table(["experiment", "setting", "value", "provenance", "source"], diff_rows),
        "defaults": ", ".join(defaults),
        "experiments": exps,
        "n_assumed": len(assumed),
        "n_settings": len(all_names),
        "n_differs": n_differs,
    }


# Settings that change how a run is computed or stored, not what the paper's protocol trains and
# measures: a different value is no deviation from it.
OPERATIONAL = frozenset(
    {"eval_batch_size", "device", "memory_format", "compile", "save_weights", "cka_examples", "curve_every_steps"}
    | {"eval_train", "eval_train.n", "run_metrics"}
)


def measured_deviations(
    settings: dict[str, dict[str, dict[str, dict[str, Any]]]],
    paper_settings: dict[str, dict[str, list[Any]]] | None,
    seeds: dict[str, int] | None = None,
    paper_seeds: dict[str, int] | None = None,
    paper_variants: dict[str, int] | None = None,
) -> list[str]:
    """Every difference between what ran and the study's paper protocol, read off the settings
    themselves (not what a study author remembered to write): command-line overrides, each setting
    whose values differ from the paper scale's (the stand-in data and model, epochs, ...), the seeds
    per variant, and the paper variants that did not run. Empty only when none exists.

    Args:
        settings: experiment → variant → setting → {value, provenance, source}, as run.
        paper_settings: experiment → setting → [{value, provenance}] of the paper scale.
        seeds, paper_seeds: seeds per variant, run and in the paper protocol, per experiment.
        paper_variants: the paper scale's number of variants per experiment.
    """
    out: list[str] = []
    overrides = sorted(
        {
            f"{n}={value_text(e.get('value'))}"
            for variants in settings.values()
            for s in variants.values()
            for n, e in s.items()
            if e.get("source") == "command-line override"
        }
    )
    if overrides:
        out.append(f"command-line overrides: {', '.join(overrides)}")
    differs: dict[tuple[str, str, str], list[str]] = {}
    for exp, variants in settings.items():
        paper = (paper_settings or {}).get(exp)
        if paper is None:
            if paper_settings:
                out.append(f"experiment {exp}: not part of the paper protocol")
            continue
        ran: dict[str, set[str]] = {}
        for s in variants.values():
            for n, e in s.items():
                ran.setdefault(n, set()).add(value_text(e.get("value")))
        for n in sorted(set(ran) | set(paper)):
            if n in OPERATIONAL:
                continue
            theirs = {value_text(e.get("value")) for e in paper.get(n, [])}
            if ran.get(n, set()) != theirs:
                key = (n, _values_text(ran.get(n, set())), _values_text(theirs))
                differs.setdefault(key, []).append(exp)
    for (n, ran_text, paper_text), exps in differs.items():
        out.append(f"{n}: {ran_text} instead of {paper_text} ({', '.join(exps)})")
    for exp, n in sorted((seeds or {}).items()):
        want = (paper_seeds or {}).get(exp)
        if want is not None and n != want:
            out.append(f"seeds: {n} per variant instead of {want} ({exp})")
    for exp, variants in settings.items():
        total = (paper_variants or {}).get(exp)
        if total and len(variants) < total:
            out.append(f"{exp}: {len(variants)} of the paper's {total} variants ran")
    return out


def _values_text(values: set[str]) -> str:
    if not values:
        return "unset"
    shown = sorted(values)
    return "/".join(shown[:MAX_VALUES]) + (f" (+{len(shown) - MAX_VALUES} more)" if len(shown) > MAX_VALUES else "")


def hyper_table_views(study: Study) -> list[dict[str, Any]]:
    """Hyperparameter tables a source reports (e.g. a learning-rate grid the authors gave)."""
    docs = {d.id: d.title for d in study.documents}
    out = []
    for t in study.tables:
        if t.kind != "hyperparameter":
            continue
        rows = [[r, *[("" if (v := t.value(r, c)) is None else f"{v.value:g}") for c in t.columns]] for r in t.rows]
        out.append(
            {
                "title": t.title,
                "where": human_source(t.where),
                "document": docs.get(t.document, t.document),
                "metric": str(t.metric),
                "table": table([str(t.metric) or "", *t.columns], rows),
            }
        )
    return out


def documents(study: Study) -> list[dict[str, str]]:
    """The study's documents: id, title and a link when their location is a URL."""
    out = []
    for d in study.documents:
        url = d.where if d.where.startswith(("http://", "https://")) else ""
        out.append({"id": d.id, "title": d.title, "url": url})
    return out


def model_name(name: str) -> str:
    """A registered model's name as a reader knows it, as its factory declares it in
    ``display_name`` (``fc`` → ``MLP``, ``resnet14`` → ``ResNet-14``); the registered name otherwise."""
    try:
        factory = plugins.get("model", name)
    except RestudyError:  # not registered in this process (e.g. a study module not imported)
        return name
    display = getattr(factory, "display_name", None)
    return display if isinstance(display, str) and display else name


def describe_runs(records: Sequence[dict[str, Any]]) -> str:
    """What ran, from the runs' own settings: ``fc (hidden 1, width 128)``; a model argument that
    varies between runs lists its values (``hidden 1–9``)."""
    models: dict[str, dict[str, list[str]]] = {}
    for rec in records:
        s = RunSettings.of_record(rec)
        if s is None or not s.has("model"):
            continue
        args = models.setdefault(str(s.engine.model), {})
        for k, v in s.part_args("model").items():
            if not isinstance(v, (dict, list)):
                vals = args.setdefault(k, [])
                if value_text(v) not in vals:
                    vals.append(value_text(v))
    out = []
    for name, args in models.items():
        parts = []
        for k, vals in args.items():
            if k in ("bias",):
                continue
            if len(vals) == 1:
                parts.append(f"{k} {vals[0]}")
            else:
                try:
                    nums = sorted(float(v) for v in vals)
                    parts.append(f"{k} {nums[0]:g}–{nums[-1]:g}")
                except ValueError:
                    parts.append(f"{k} {'/'.join(vals[:4])}")
        out.append(model_name(name) + (f" ({', '.join(parts)})" if parts else ""))
    return " and ".join(out) or "the study's models"
