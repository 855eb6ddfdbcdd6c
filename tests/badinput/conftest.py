"""The fault matrix's pipeline fixtures, for the end-to-end bad-input tests."""

from __future__ import annotations

from tests.faults.conftest import pipeline, pipeline_factory

__all__ = ["pipeline", "pipeline_factory"]
