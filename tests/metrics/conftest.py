"""pysaliency as an independent reference, imported with the documented shims."""

import sys
import types

import numpy as np
import pytest


@pytest.fixture(scope="session")
def pysaliency():
    # pysaliency 0.2.22 imports torch at package import (its metric code never uses
    # it) and calls np.trapz, which numpy 2.4 removed.
    sys.modules.setdefault("torch", types.ModuleType("torch"))
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    return pytest.importorskip("pysaliency")
