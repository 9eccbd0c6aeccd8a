"""Helpers shared by several test modules: each module here is named for what it holds, and test
modules import from here, never from one another. Fixtures among them are registered from
tests/conftest.py (``pytest_plugins``), and the asserts in these modules are rewritten as the
tests' own are."""
