"""The built-in savings rule pack (``savings.yaml``) and its tests (``savings.tests.yaml``)."""
