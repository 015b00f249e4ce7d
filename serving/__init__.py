"""Exporting tfsal models as SavedModels and serving them (TF Serving API)."""
