"""Fixtures: placeholder until the component lands."""
