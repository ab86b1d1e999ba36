"""Example rule sets shipped with reclaim, each with its tests beside it.

``invoices.yaml`` is the user's first format (``name``/``condition``/``action`` naming Python
callables); its actions and the ``credit_watch_list`` constant are registered by importing
:mod:`reclaim.rules.examples.invoice_actions`. The other files use only built-in actions.
Importing this package registers nothing.
"""

from pathlib import Path

__all__ = ["EXAMPLES_DIR"]

#: The folder holding the example rule files.
EXAMPLES_DIR = Path(__file__).parent
