"""Writing results: tables, summary.json, timings (atomically) and figures."""

from flexopt.report.figures import make_figures
from flexopt.report.save import save_results

__all__ = ["make_figures", "save_results"]
