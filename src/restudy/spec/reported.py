"""What the documents report: the paper, the documents numbers are taken from, reported values as
printed, and reported tables with the layout that maps their rows and columns onto runs.

Imports pydantic, the study file's value types and the model sets of claim_base.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .claim_base import ModelSet
from .values import Frozen, Level, Loc, ScaleName, check_id, level_str, raise_located


class Paper(Frozen):
    title: str
    authors: list[str] = []
    venue: str = ""
    year: int | None = None
    url: str = Field("", description="the paper's address: http(s) only")
    code: str = Field("", description="the original code's address: http(s) only")

    @field_validator("url", "code")
    @classmethod
    def _web_address(cls, v: str) -> str:
        # a report turns these into links: a javascript: or data: address would run in the reader's browser
        if v and not v.lower().startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// address; got {v!r}")
        return v


class Document(Frozen):
    """A document that numbers are taken from: the original paper or a reproduction report."""

    id: str
    kind: Literal["original", "reproduction"]
    title: str
    where: str = Field("", description="a path or URL to the document")

    _id = field_validator("id")(check_id)


class ReportedValue(Frozen):
    """A number as a document prints it. A bare number (a YAML float keeps the digits it was
    written with, trailing zeros included, as does a quoted one:
    ``"0.870"``) is shorthand for ``{value: ...}``; ``text`` keeps the printed digits."""

    value: float
    pm: float | None = Field(None, description="the ± given with the value (its SD unless pm_is says se)")
    pm_is: Literal["sd", "se"] = Field("sd", description="whether the ± is the runs' SD or the value's standard error")
    n: int | None = Field(None, ge=1, description="number of runs behind the value")
    text: str = Field("", description="the value as printed (read from the study file's own digits)")

    @model_validator(mode="before")
    @classmethod
    def _printed(cls, data: Any) -> Any:
        if isinstance(data, (int, float, str)) and not isinstance(data, bool):
            data = {"value": data}
        if isinstance(data, dict) and "value" in data and not data.get("text"):
            v = data["value"]
            if isinstance(v, str):
                text = v.strip()
            elif isinstance(v, int) and not isinstance(v, bool):
                text = str(v)
            elif isinstance(v, float):  # a YAML float keeps its printed text (restudy.storage.safeio.PrintedFloat)
                text = getattr(v, "text", None) or repr(v)
            else:
                return data
            data = {**data, "text": text}
            try:
                data["value"] = float(text)
            except ValueError:
                pass  # the float field reports the bad value
        return data

    def decimals(self) -> int:
        """Digits printed after the decimal point (0 for an integer; read from ``text``)."""
        text = (self.text or repr(self.value)).lower().lstrip("+-")
        mantissa, _, exp = text.partition("e")
        digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
        return digits - (int(exp) if exp else 0)

    def rounding(self) -> float:
        """Half a unit of the last printed digit: ``0.870`` → 0.0005, ``8.0`` → 0.05, ``40`` → 0.5."""
        return 0.5 * 10.0 ** (-self.decimals())


class StandIn(Frozen):
    """At another scale, the axis levels that stand in for a table's rows or columns: ``rows:
    {resnet56: fc}`` reads the paper's row ``resnet56`` from the small scale's runs at level ``fc``.
    The report shows them side by side as a stand-in, never one labelled as the other, and gives
    them no numeric verdict (the table is compared with runs at its own scale only)."""

    rows: dict[str, Level] = {}
    columns: dict[str, Level] = {}
    reason: str = Field(min_length=1, description="why these runs stand in for the paper's (e.g. no GPU for ResNet-56)")

    @field_validator("rows", "columns", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        return {level_str(k): x for k, x in v.items()} if isinstance(v, dict) else v


class TableLayout(Frozen):
    """How the rows and columns of a reported table map onto an experiment's variant axes. A table
    of one row (or one column) may leave that axis out: its one row then selects no level (e.g. a
    table of one result per method, ``column_axis: method`` alone). ``stand_ins``: per scale, the
    levels whose runs stand in for rows or columns the scale does not run (:class:`StandIn`)."""

    experiment: str
    row_axis: str | None = None
    column_axis: str | None = None
    where: dict[str, Level | list[Level]] = {}
    stand_ins: dict[ScaleName, StandIn] = {}

    def level(self, scale: str | None, row: str, column: str) -> dict[str, str]:
        """The axis levels of cell (row, column) among runs at ``scale``: the row's and column's
        own, or their stand-ins at that scale."""
        sub = self.stand_ins.get(scale) if scale else None
        out = {}
        if self.row_axis is not None:
            out[self.row_axis] = level_str(sub.rows.get(row, row)) if sub else row
        if self.column_axis is not None:
            out[self.column_axis] = level_str(sub.columns.get(column, column)) if sub else column
        return out

    def stand_in_text(self, scale: str | None, row: str, column: str) -> str:
        """``"fc for resnet56"``: what stands in for the cell at ``scale`` ('' when nothing does)."""
        sub = self.stand_ins.get(scale) if scale else None
        if not sub:
            return ""
        parts = []
        if row in sub.rows:
            parts.append(f"{level_str(sub.rows[row])} for {row}")
        if column in sub.columns:
            parts.append(f"{level_str(sub.columns[column])} for {column}")
        return ", ".join(parts)


class VariabilityLayout(Frozen):
    """Rows of a reported table are model sets; columns are variability metrics
    (``sd_accuracy``, ``sd_cross_entropy``, ``disagreement``, ``correlation``, ``ensemble_gain``) or
    ``reduction_original`` / ``reduction_recalculated`` (variability reduction %, two ways)."""

    rows: dict[str, ModelSet]
    reference: str | None = Field(None, description="row the reductions are computed against")


class SquaredDeviation(Frozen):
    """A reproduction report's consistency criterion for a table: the squared deviation of each
    run from the reported value, averaged over the runs of a cell, is below ``below`` (values
    multiplied by ``unit`` first, e.g. 0.01 for percentages the report squared as fractions)."""

    below: float = Field(gt=0, description="a cell is 'consistent' when its averaged squared deviation is below this")
    unit: float = Field(1.0, gt=0, description="factor applied to values before squaring (0.01: % as fractions)")
    reason: str = Field(min_length=1, description="where the criterion and its unit come from")


class ReportedTable(Frozen):
    id: str
    title: str
    document: str = Field(description="id of a document in 'documents'")
    where: str = Field("", description="place in the document, e.g. 'Table 1'")
    kind: Literal["result", "hyperparameter"] = "result"
    metric: str = "test_acc"
    unit: str = "%"
    scale: ScaleName = Field("paper", description="the scale whose runs are comparable to these numbers")
    dataset: str = ""
    test_size: int | None = Field(None, ge=1, description="test-set size behind the numbers (binomial floor)")
    rows: list[str] = Field(min_length=1)
    columns: list[str] = Field(min_length=1)
    values: dict[str, dict[str, ReportedValue | None]]
    layout: TableLayout | VariabilityLayout | None = None
    note: str = Field("", description="a remark the report shows with the table (e.g. where the prose disagrees)")
    squared_deviation: SquaredDeviation | None = Field(
        None, description="a reproduction's averaged-squared-deviation consistency criterion, shown per cell"
    )

    _id = field_validator("id")(check_id)

    @field_validator("rows", "columns", mode="before")
    @classmethod
    def _strs(cls, v: Any) -> Any:
        return [level_str(x) for x in v] if isinstance(v, list) else v

    @field_validator("values", mode="before")
    @classmethod
    def _str_keys(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {
                level_str(r): ({level_str(c): x for c, x in cols.items()} if isinstance(cols, dict) else cols)
                for r, cols in v.items()
            }
        return v

    @model_validator(mode="after")
    def _cells_in_grid(self) -> ReportedTable:
        errors: list[tuple[Loc, str, Any]] = []
        for r, cols in self.values.items():
            if r not in self.rows:
                errors.append((("values", r), f"row {r!r} is not one of the table's rows: {', '.join(self.rows)}", r))
                continue
            for c in cols:
                if c not in self.columns:
                    errors.append(
                        (
                            ("values", r, c),
                            f"column {c!r} is not one of the table's columns: {', '.join(self.columns)}",
                            c,
                        )
                    )
        if isinstance(self.layout, TableLayout):
            for axis, field, labels in (
                (self.layout.row_axis, "row_axis", self.rows),
                (self.layout.column_axis, "column_axis", self.columns),
            ):
                if axis is None and len(labels) > 1:
                    what = "rows" if field == "row_axis" else "columns"
                    errors.append(
                        (
                            ("layout", field),
                            f"a table of {len(labels)} {what} needs the axis its {what} are levels of",
                            None,
                        )
                    )
            for sc, sub in self.layout.stand_ins.items():
                if sc == self.scale:
                    errors.append((("layout", "stand_ins", sc), "a table's own scale runs its own rows", sc))
                for r in sub.rows:
                    if r not in self.rows:
                        errors.append((("layout", "stand_ins", sc, "rows", r), "not one of the table's rows", r))
                for c in sub.columns:
                    if c not in self.columns:
                        errors.append((("layout", "stand_ins", sc, "columns", c), "not one of the table's columns", c))
        raise_located(errors, "ReportedTable")
        if self.kind == "result" and self.layout is None and not self.note:
            raise ValueError(
                "a 'result' table needs a 'layout' mapping rows/columns to variant axes or, for numbers no run "
                "of this study produces (e.g. a CPU study's view of ImageNet results), a 'note' saying so"
            )
        return self

    def value(self, row: str, column: str) -> ReportedValue | None:
        return self.values.get(row, {}).get(column)
