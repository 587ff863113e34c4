"""Writing results: tables, summary.json, timings (atomically)."""

from flexopt.report.save import save_results

__all__ = ["save_results"]
