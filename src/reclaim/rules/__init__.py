"""The rules engine: YAML rules over facts, with a safe expression language."""

__all__: list[str] = []
