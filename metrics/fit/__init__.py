"""A fast, numpy-based FIT decoder for running activities.

from evenstride.metrics.fit import read_fit, FitReadError
ff = read_fit("run.fit")          # FitFile: file_id, devices, sessions, laps, records, warnings
for run in ff.runs():             # running sessions only
    run.records["gct_balance_pct"]
"""

from evenstride.metrics.fit.errors import FitReadError
from evenstride.metrics.fit.model import FitFile, Run
from evenstride.metrics.fit.reader import read_fit

__all__ = ["FitFile", "FitReadError", "Run", "read_fit"]
