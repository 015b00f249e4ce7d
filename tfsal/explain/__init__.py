"""Explainable saliency models derived from deep ones (DESIGN.md §1-3)."""

from tfsal.explain.ridge import RidgeAccumulator, fit_ridge

__all__ = ["RidgeAccumulator", "fit_ridge"]
