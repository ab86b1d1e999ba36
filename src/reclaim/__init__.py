"""reclaim: find cloud waste, ticket it to its owner, follow it to done, report the money saved."""

__version__ = "0.1.0"

__all__ = ["__version__"]
