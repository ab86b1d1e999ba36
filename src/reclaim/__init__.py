"""reclaim: find cloud waste, ticket it to its owner, follow it to done, report the money saved."""

import os as _os

from reclaim._memory import ALLOCATOR_CONF_VARIABLE, RECLAIM_ALLOCATOR_CONF

# Set before any module of the package imports Polars: its allocator reads the variable once,
# when Polars is first imported (see reclaim._memory). A value the user set is left alone.
_os.environ.setdefault(ALLOCATOR_CONF_VARIABLE, RECLAIM_ALLOCATOR_CONF)

__version__ = "0.1.0"

__all__ = ["__version__"]
