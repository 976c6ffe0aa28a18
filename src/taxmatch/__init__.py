"""taxmatch: disclosure matching between agencies."""

import logging

__version__ = "0.1.0"

# A library never decides where log records go; the CLI and the server do.
logging.getLogger("taxmatch").addHandler(logging.NullHandler())
