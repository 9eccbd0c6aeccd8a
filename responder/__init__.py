"""responder: turns Alertmanager alerts about ML models into ML operations runbook actions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("responder")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
