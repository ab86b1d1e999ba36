"""A map step's stored items must be the items its code gives now, or the run is refused.

An item's key is its identity: its checkpoint row, and the idempotency key its side effects
are keyed on (``run/step/key``). If ``key=`` changed between a crash and the resume, every item
would look new and run again under a new idempotency key, so each keyed effect would happen a
second time. The run's ``over`` list is checkpointed, so on resume the elements are the same;
only the keys computed from them can differ. Hence the rule, checked before any step runs:

- every stored item key must still be given by the code (a key it no longer gives is a result
  that would be dropped, for an item whose effects already happened): else refused;
- a finished map step must also have a stored item for every current key;
- an unfinished one may have fewer (items not reached yet run normally), in any order: items
  are matched by key, never by position.
"""

from __future__ import annotations

__all__ = ["check_item_keys"]

from collections.abc import Collection, Sequence
from typing import Any

from reclaim.durable.errors import DefinitionMismatch
from reclaim.durable.workflow import StepSpec

_SHOWN = 3


def check_item_keys(
    *,
    run_id: str,
    spec: StepSpec,
    elements: Sequence[Any],
    stored: Collection[str],
    finished: bool,
) -> None:
    """Raise ``DefinitionMismatch`` naming the step and the keys when they no longer match.

    ``elements`` is the (restored) output of ``spec.over``; ``stored`` the item keys the run
    has rows for; ``finished`` whether the map step itself is checkpointed as done.
    """
    if not stored or not isinstance(elements, list | tuple):
        # Nothing ran yet, or the list itself is wrong, which the map step reports when run.
        return
    assert spec.key is not None
    where = f"map step {spec.name!r} of run {run_id}"
    fix = (
        "an item's key is its identity and the idempotency key of its effects: restore the "
        "key= function that started this run and resume it, or cancel the run "
        f"(`reclaim runs cancel {run_id}`) and start a new one"
    )
    current: list[str] = []
    given: set[str] = set()
    for position, element in enumerate(elements):
        try:
            key = str(spec.key(element))
        except Exception as exc:
            raise DefinitionMismatch(
                f"{where} has {len(stored)} stored item(s), but its key= function now fails on "
                f"element {position} of {spec.over!r}: {type(exc).__name__}: {exc}",
                fix=fix,
            ) from exc
        if key in given:
            raise DefinitionMismatch(
                f"{where} has {len(stored)} stored item(s), but its key= function now gives "
                f"{key!r} twice (again for element {position} of {spec.over!r})",
                fix=fix,
            )
        given.add(key)
        current.append(key)
    orphans = sorted(key for key in stored if key not in given)
    unstored = [key for key in current if key not in stored] if finished else []
    if not orphans and not unstored:
        return
    if orphans:
        problem = (
            f"{len(orphans)} of its {len(stored)} stored item(s) have keys its key= function "
            f"no longer gives: stored {_sample(orphans)}"
        )
    else:
        problem = f"it finished, but has no stored item for {_sample(unstored)}"
    raise DefinitionMismatch(
        f"{where}: {problem}; the code now gives {_sample(current)} for the "
        f"{len(current)} element(s) of {spec.over!r}",
        fix=fix,
    )


def _sample(keys: Sequence[str]) -> str:
    if not keys:
        return "no key"
    shown = ", ".join(repr(key) for key in keys[:_SHOWN])
    return shown if len(keys) <= _SHOWN else f"{shown} and {len(keys) - _SHOWN} more"
