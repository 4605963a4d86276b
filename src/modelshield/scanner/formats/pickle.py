"""Placeholder pickle handler until the pickle analyzer lands."""
