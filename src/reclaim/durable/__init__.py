"""The durable execution engine: checkpointed workflows that resume after a crash."""

__all__: list[str] = []
