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
    url: str = ""
    code: str = ""


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


class TableLayout(Frozen):
    """How the rows and columns of a reported table map onto an experiment's variant axes."""

    experiment: str
    row_axis: str
    column_axis: str
    where: dict[str, Level | list[Level]] = {}


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
        raise_located(errors, "ReportedTable")
        if self.kind == "result" and self.layout is None:
            raise ValueError("a 'result' table needs a 'layout' mapping rows/columns to variant axes")
        return self

    def value(self, row: str, column: str) -> ReportedValue | None:
        return self.values.get(row, {}).get(column)
