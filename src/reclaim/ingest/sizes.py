"""Instance types: family, size, the next size down, and previous-generation families.

Capacity ratios come from AWS's normalization factors (a ``large`` is 4 units, an ``xlarge`` 8,
a ``2xlarge`` 16, …), which track on-demand price closely within a family. ``size_down`` is the
next smaller *common* size; a family that lacks it (few do) will show up as a rightsizing
recommendation the owner cannot apply as is, which the ticket text makes clear.
"""

from __future__ import annotations

__all__ = ["PREVIOUS_GENERATION_FAMILIES", "SIZE_UNITS", "instance_type_columns"]

from typing import Final

import polars as pl

SIZE_UNITS: Final[dict[str, float]] = {
    "nano": 0.25,
    "micro": 0.5,
    "small": 1,
    "medium": 2,
    "large": 4,
    "xlarge": 8,
    "2xlarge": 16,
    "3xlarge": 24,
    "4xlarge": 32,
    "6xlarge": 48,
    "8xlarge": 64,
    "9xlarge": 72,
    "10xlarge": 80,
    "12xlarge": 96,
    "16xlarge": 128,
    "18xlarge": 144,
    "24xlarge": 192,
    "32xlarge": 256,
    "48xlarge": 384,
}

# Sizes a rightsizing step lands on: the ones nearly every current family offers.
_STEP_SIZES: Final = (
    "nano",
    "micro",
    "small",
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "4xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
    "32xlarge",
    "48xlarge",
)


def _size_down(size: str) -> str | None:
    units = SIZE_UNITS[size]
    smaller = [step for step in _STEP_SIZES if SIZE_UNITS[step] < units]
    return smaller[-1] if smaller else None


SIZE_DOWN: Final[dict[str, str]] = {
    size: down for size in SIZE_UNITS if (down := _size_down(size)) is not None
} | {
    # Families with 9xlarge and 18xlarge (c5, c5n) pair them with 4xlarge and 9xlarge.
    "9xlarge": "4xlarge",
    "18xlarge": "9xlarge",
}
SIZE_DOWN_RATIO: Final[dict[str, float]] = {
    size: SIZE_UNITS[down] / SIZE_UNITS[size] for size, down in SIZE_DOWN.items()
}

PREVIOUS_GENERATION_FAMILIES: Final = frozenset(
    {
        # AWS "previous generation instances"; the same families back RDS db.* classes.
        "c1",
        "c3",
        "c4",
        "cc2",
        "cr1",
        "g2",
        "g3",
        "hs1",
        "i2",
        "m1",
        "m2",
        "m3",
        "m4",
        "p2",
        "r3",
        "r4",
        "t1",
        "t2",
    }
)


def instance_type_columns(instance_type: pl.Expr) -> list[pl.Expr]:
    """``family``, ``size``, ``size_down``, ``size_down_ratio``, ``previous_generation``.

    ``m5.xlarge`` → m5, xlarge, m5.large, 0.5, false; ``db.r4.2xlarge`` → r4, 2xlarge,
    db.r4.xlarge, 0.5, true. Types that do not look like ``family.size`` give nulls.
    """
    text = instance_type.str.to_lowercase().str.strip_chars()
    parts = text.str.extract_groups(r"^(db\.|cache\.)?([a-z][a-z0-9-]*)\.([0-9]*[a-z]+)$")
    prefix = parts.struct.field("1").fill_null("")
    family = parts.struct.field("2")
    size = parts.struct.field("3")
    down = size.replace_strict(SIZE_DOWN, default=None, return_dtype=pl.String)
    return [
        family.alias("family"),
        size.alias("size"),
        pl.when(down.is_not_null())
        .then(pl.concat_str(prefix, family, pl.lit("."), down))
        .otherwise(None)
        .alias("size_down"),
        size.replace_strict(SIZE_DOWN_RATIO, default=None, return_dtype=pl.Float64).alias(
            "size_down_ratio"
        ),
        pl.when(family.is_null())
        .then(None)
        .otherwise(family.is_in(sorted(PREVIOUS_GENERATION_FAMILIES)))
        .alias("previous_generation"),
    ]
