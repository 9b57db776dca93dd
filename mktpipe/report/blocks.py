"""The report's building blocks: sections made of KPI cards, charts, tables and text.

Section builders (``kpis``, ``trends``, ``model_quality``, ...) return a ``Section``; the template
renders every section the same way, so each builder only decides what to say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mktpipe.i18n import _
from mktpipe.report import formatting as fmt


@dataclass
class Kpi:
    """One headline number; ``value`` is the raw number (written to ``data-value``)."""

    key: str
    label: str
    value: Any
    unit: str = "int"  # see formatting.fmt_value
    previous: Any = None
    higher_is_better: bool | None = True
    help: str = ""
    compared_to: str = ""  # "vs previous 30 days"

    @property
    def display(self) -> str:
        return fmt.fmt_value(self.value, self.unit)

    @property
    def change(self) -> str:
        return fmt.fmt_change(self.value, self.previous)[0]

    @property
    def change_class(self) -> str:
        return fmt.change_class(fmt.fmt_change(self.value, self.previous)[1],
                                self.higher_is_better)

    @property
    def data_value(self) -> str:
        return repr(float(self.value)) if fmt.is_number(self.value) else ""


@dataclass
class Chart:
    """An inline SVG chart; ``id`` becomes ``data-chart`` on its ``<figure>``."""

    id: str
    caption: str
    svg: str
    size: str = "wide"  # wide: the full width; half: two side by side
    kind: str = "chart"


@dataclass
class Table:
    """Pre-formatted cells; ``numeric`` columns are right-aligned."""

    columns: list[str]
    rows: list[list[str]]
    title: str = ""
    note: str = ""
    numeric: set[int] = field(default_factory=set)
    id: str = ""
    size: str = "wide"
    collapsed: bool = False  # long tables fold into <details>
    kind: str = "table"


@dataclass
class Text:
    """A paragraph; ``style``: 'text', 'note' (muted) or 'warning' (a callout)."""

    text: str
    style: str = "text"  # text | lead | note | warning | callout | subheading
    kind: str = "text"


@dataclass
class Kpis:
    items: list[Kpi]
    kind: str = "kpis"


@dataclass
class Section:
    """A report section; ``missing`` set = the data is not available (the text says why)."""

    id: str
    title: str
    intro: str = ""
    blocks: list[Any] = field(default_factory=list)
    missing: str | None = None

    def add(self, *blocks: Any) -> Section:
        self.blocks.extend(b for b in blocks if b is not None)
        return self

    def note(self, text: str, style: str = "note") -> Section:
        return self.add(Text(text, style))

    @property
    def charts(self) -> list[Chart]:
        return [b for b in self.blocks if isinstance(b, Chart)]


def not_available(what: str, how: str = "") -> str:
    """The standard 'not available' sentence the tests look for."""
    return _("Not available: {what}.").format(what=what) + (f" {how}" if how else "")
