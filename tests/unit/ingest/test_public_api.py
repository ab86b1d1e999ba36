from __future__ import annotations

import reclaim.ingest


def test_public_names_are_frozen() -> None:
    assert sorted(reclaim.ingest.__all__) == [
        "BUNDLED_SAMPLE",
        "BadRow",
        "CollectReport",
        "Collection",
        "FACTS",
        "FACTS_VERSION",
        "FACT_COLUMNS",
        "FACT_SCHEMA",
        "FIELD_TYPES",
        "Fact",
        "FileReport",
        "ImportedFile",
        "KINDS",
        "OPTIONAL_COLUMNS",
        "REQUIRED_COLUMNS",
        "SAMPLE_END",
        "SampleFiles",
        "StoredCollection",
        "build_facts",
        "bundled_sample",
        "collect_aws",
        "collect_facts",
        "collect_into",
        "conform_facts",
        "empty_facts",
        "generate_sample",
        "imported_files",
        "latest_collection",
        "list_collections",
        "load_facts",
        "read_aws",
        "read_facts_parquet",
        "save_collection",
        "validate_facts",
        "write_facts_parquet",
    ]
    for name in reclaim.ingest.__all__:
        assert hasattr(reclaim.ingest, name), name
