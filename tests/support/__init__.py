"""Fixtures shared by the unit and infra checks (tests/conftest.py puts tests/ on the path)."""
