"""`EnergyReport`: a `NetworkEstimate` that also renders itself as a table, CSV, HTML and plots.

The presentation modules (`table`, `summary`, `html`, `plots`) read a `NetworkEstimate`
and never import this module, so the dependencies run one way: results, then
presentation, then this façade.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nnjoules.energy.results import NetworkEstimate
from nnjoules.report.html import render_html
from nnjoules.report.summary import report_to_csv, write_text
from nnjoules.report.table import render_report

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class EnergyReport(NetworkEstimate):
    """Energy of a network on a hardware, per layer, level and operand.

    The queries (``total()``, ``by_level()``, ``layer(name)``, ``to_dict()``, ...) are
    those of `NetworkEstimate`; this class adds the readable forms.
    """

    def to_table(self, width: int | None = None) -> str:
        """A readable per-layer table (plain text), then the totals on their own lines.

        Args:
            width: most characters per line; default the terminal's width (``$COLUMNS``
                first), or 100 when stdout is not a terminal. Columns that do not fit are
                left out (and named); long layer names are shortened in the middle;
                numbers are never cut.
        """
        return render_report(self, width=width)

    def to_csv(self, path: str | Path | None = None) -> str:
        """The per-layer CSV text (columns: ``docs/report-json.md``); also written to ``path``."""
        text = report_to_csv(self)
        if path is not None:
            write_text(path, text)
        return text

    def to_html(self, path: str | Path | None = None, *, images: str = "png") -> str:
        """One self-contained HTML page (charts, sortable table, assumptions).

        Args:
            path: also write the page here, atomically.
            images: embed the charts as ``"png"`` (base64) or inline ``"svg"``.
        """
        text = render_html(self, images=images)
        if path is not None:
            write_text(path, text)
        return text

    def plot(self, kind: str = "operand") -> Figure:
        """A matplotlib ``Figure``: ``"operand"``, ``"level"``, ``"summary"`` or ``"proxies"``.

        See :mod:`nnjoules.report.plots`; save it with ``fig.savefig("x.png")``.
        """
        # matplotlib is imported only when a plot is asked for (it costs ~0.3 s).
        from nnjoules.report.plots import plot_report

        return plot_report(self, kind)
