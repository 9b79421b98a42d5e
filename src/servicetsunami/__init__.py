"""ServiceTsunami: the multi-tenant integration brain for data and AI agents."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("servicetsunami")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
