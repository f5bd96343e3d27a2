"""Test helpers for the reference fixtures: the seeded weight recipe and the loaders."""
