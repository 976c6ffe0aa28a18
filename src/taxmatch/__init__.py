"""taxmatch: disclosure matching between agencies."""

__version__ = "0.1.0"
