"""The application's tables, one module per component, all on ``reclaim.store.schema.metadata``."""
