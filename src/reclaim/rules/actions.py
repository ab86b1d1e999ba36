"""The action vocabulary: what a rule does when its condition holds.

Every action registers under a name with a JSON Schema for its parameters (see
:mod:`reclaim.rules.params` for the ``x-kind`` of each parameter) and a YAML example in its
docstring. The example is a whole rule set with its own ``tests:``; a test loads every example
and runs those tests, so the documentation cannot drift from the code.

A handler receives the fact (the context, read-only) and the evaluated parameters, and returns
the action's result. Built-in handlers are pure: they return their parameters, and the engine
records them on the match. Python callables (the host application's ``ACTION_MAP``) are
registered with :func:`register_action` and called as ``fn(context, **params)``.
"""

from __future__ import annotations

__all__ = [
    "ACTIONS",
    "CONSTANTS",
    "ActionHandler",
    "ActionRegistry",
    "ActionSpec",
    "register_action",
    "register_constants",
]

import inspect
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, overload

from reclaim.errors import ConfigError

#: ``handler(context, params) -> result``
ActionHandler = Callable[[Mapping[str, Any], Mapping[str, Any]], Any]

_F = TypeVar("_F", bound=Callable[..., Any])
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_YAML_EXAMPLE = re.compile(r"```ya?ml\n(?P<body>.*?)```", re.DOTALL)
_ANY_PARAMS: Mapping[str, Any] = MappingProxyType({"type": "object"})


def example_from_docstring(doc: str | None) -> str | None:
    """The first fenced ```` ```yaml ```` block of a docstring, dedented; None if there is none."""
    if not doc:
        return None
    match = _YAML_EXAMPLE.search(inspect.cleandoc(doc))
    return textwrap.dedent(match.group("body")) if match else None


@dataclass(frozen=True)
class ActionSpec:
    """One registered action.

    ``updates_context``: the handler returns a mapping of fields merged into the context, which
    later rules in ``ordered`` mode see. ``pure``: the handler has no side effects, so it may run
    in rule tests, ``explain`` and the CLI; impure handlers (the host's callables) run only in
    :meth:`RuleSet.evaluate` with ``run_actions=True``.
    """

    name: str
    handler: ActionHandler
    schema: Mapping[str, Any] = field(default_factory=lambda: dict(_ANY_PARAMS))
    doc: str = ""
    example: str | None = None
    updates_context: bool = False
    pure: bool = False
    builtin: bool = False

    @property
    def summary(self) -> str:
        """The first line of the action's documentation."""
        return self.doc.strip().splitlines()[0] if self.doc.strip() else ""


class ActionRegistry:
    """A mapping of action names to :class:`ActionSpec`, to pass to the rule loader.

    :data:`ACTIONS` is the process-wide registry holding the built-ins and whatever
    :func:`register_action` added; :meth:`copy` gives an isolated one (tests, tenants).
    """

    def __init__(self, specs: Mapping[str, ActionSpec] | None = None) -> None:
        self._specs: dict[str, ActionSpec] = dict(specs or {})

    def add(self, spec: ActionSpec, *, replace: bool = False) -> ActionSpec:
        """Register ``spec``; a name already taken is an error unless ``replace``."""
        if not _NAME.match(spec.name):
            raise ConfigError(
                f"invalid action name {spec.name!r}",
                fix="use letters, digits, '_', '-' and '.', starting with a letter",
            )
        if spec.name in self._specs and not replace:
            raise ConfigError(
                f"action {spec.name!r} is already registered",
                fix="choose another name, or pass replace=True to override it",
            )
        if spec.schema.get("type", "object") != "object":
            raise ConfigError(
                f"action {spec.name!r}: the parameter schema must have type 'object'",
                fix='describe the parameters as {"type": "object", "properties": {...}}',
            )
        self._specs[spec.name] = spec
        return spec

    def register(
        self,
        name: str,
        function: Callable[..., Any],
        *,
        schema: Mapping[str, Any] | None = None,
        example: str | None = None,
        updates_context: bool = False,
        pure: bool = False,
        replace: bool = False,
    ) -> ActionSpec:
        """Register a Python callable called as ``function(context, **params)``."""

        def handler(context: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
            return function(context, **params)

        doc = inspect.getdoc(function) or ""
        return self.add(
            ActionSpec(
                name=name,
                handler=handler,
                schema=dict(schema) if schema is not None else dict(_ANY_PARAMS),
                doc=doc,
                example=example if example is not None else example_from_docstring(doc),
                updates_context=updates_context,
                pure=pure,
            ),
            replace=replace,
        )

    def get(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def __getitem__(self, name: str) -> ActionSpec:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[ActionSpec]:
        return [self._specs[name] for name in sorted(self._specs)]

    def copy(self) -> ActionRegistry:
        return ActionRegistry(self._specs)


def _identity(context: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    return dict(params)


def _builtin(
    name: str, schema: Mapping[str, Any], *, updates_context: bool = False
) -> Callable[[Callable[..., Any]], ActionSpec]:
    def decorate(documented: Callable[..., Any]) -> ActionSpec:
        doc = inspect.getdoc(documented) or ""
        return ActionSpec(
            name=name,
            handler=_identity,
            schema=schema,
            doc=doc,
            example=example_from_docstring(doc),
            updates_context=updates_context,
            pure=True,
            builtin=True,
        )

    return decorate


_EXPRESSION = {"x-kind": "expression"}
_TEMPLATE = {"type": "string", "x-kind": "template"}


@_builtin(
    "set",
    {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": _EXPRESSION,
        "description": "Fields to set on the context: each value is an expression.",
    },
    updates_context=True,
)
def _set() -> None:
    """Set fields on the context; each value is an expression over the fact.

    In ``ordered`` mode later rules see the new values, and the last rule to set a field wins.
    Text is a quoted string inside the expression: ``tier: "'gold'"``.

    ```yaml
    mode: ordered
    rules:
      - id: big-spender
        when: monthly_spend > 1000
        action: set
        params: {tier: "'gold'", discount: 0.1}
      - id: gold-and-old
        when: tier == 'gold' and customer_age > 365
        action: set
        params: {discount: discount + 0.05}
    tests:
      - name: the second rule sees what the first one set
        fact: {monthly_spend: 2000, customer_age: 400}
        fired: [big-spender, gold-and-old]
        context: {tier: gold, discount: 0.15}
      - name: small accounts are left alone
        fact: {monthly_spend: 10, customer_age: 400}
        fired: []
    ```
    """


_RECOMMEND_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {
            "type": "string",
            "minLength": 1,
            "description": "What to do with the resource, e.g. delete, rightsize, schedule.",
        },
        "title": {**_TEMPLATE, "description": "One-line title; {expressions} are filled in."},
        "description": {**_TEMPLATE, "description": "Longer text; {expressions} are filled in."},
        "savings": {
            "type": "number",
            "x-kind": "expression",
            "description": "Monthly saving in the fact's currency (an expression).",
        },
    },
    "additionalProperties": _EXPRESSION,
}


@_builtin("recommend", _RECOMMEND_SCHEMA)
def _recommend() -> None:
    """Emit a recommendation: what to do, why, and how much it saves each month.

    ``type`` is written as is; ``title`` and ``description`` are templates; ``savings`` and
    every other parameter are expressions.

    ```yaml
    kind: savings
    facts: {resource_id: string, cpu_avg: number, monthly_cost: number}
    rules:
      - id: idle-vm
        description: A VM that does almost nothing costs its full price.
        when: cpu_avg < 5 and monthly_cost > 20
        action: recommend
        params:
          type: rightsize
          title: "Rightsize {resource_id}"
          savings: monthly_cost * 0.7
    tests:
      - name: an idle VM saves 70% of its cost
        fact: {resource_id: vm-1, cpu_avg: 2, monthly_cost: 100}
        fired: [idle-vm]
        actions:
          idle-vm: {type: rightsize, title: Rightsize vm-1, savings: 70.0}
      - name: a busy VM is fine
        fact: {resource_id: vm-2, cpu_avg: 60, monthly_cost: 100}
        fired: []
    ```
    """


@_builtin("emit", _RECOMMEND_SCHEMA)
def _emit() -> None:
    """Emit a recommendation; another name for ``recommend``.

    ```yaml
    kind: savings
    rules:
      - id: unattached-disk
        when: state == 'unattached' and age_days > 7
        action: emit
        params: {type: delete, savings: monthly_cost}
    tests:
      - name: an old unattached disk is deleted
        fact: {state: unattached, age_days: 30, monthly_cost: 12.5}
        fired: [unattached-disk]
        actions:
          unattached-disk: {type: delete, savings: 12.5}
    ```
    """


@_builtin(
    "route",
    {
        "type": "object",
        "required": ["team"],
        "properties": {
            "team": {**_TEMPLATE, "description": "The owning team."},
            "project": {**_TEMPLATE, "description": "Ticket project key, e.g. the Jira project."},
            "assignee": {**_TEMPLATE, "description": "Who the ticket is assigned to."},
            "component": {**_TEMPLATE, "description": "Ticket component."},
            "labels": {
                "type": "array",
                "items": _TEMPLATE,
                "x-kind": "template",
                "description": "Labels added to the ticket; each is a template.",
            },
        },
        "additionalProperties": False,
    },
)
def _route() -> None:
    """Send the item to a team and its ticket project.

    Every parameter is a template, so ``team: "{tags.team}"`` copies a tag. With
    ``mode: first`` the first matching route (highest priority, then file order) wins.

    ```yaml
    kind: routing
    mode: first
    rules:
      - id: tagged-team
        priority: 10
        when: tags.team is not None
        action: route
        params: {team: "{tags.team}", project: "{upper(tags.team)}"}
      - id: data-accounts
        when: account in ['analytics', 'warehouse']
        action: route
        params: {team: data, project: DATA, labels: [finops]}
      - id: fallback
        priority: -100
        when: true
        action: route
        params: {team: platform, project: PLAT}
    tests:
      - name: a team tag wins over the account
        fact: {account: analytics, tags: {team: web}}
        fired: [tagged-team]
        actions:
          tagged-team: {team: web, project: WEB}
      - name: untagged analytics resources go to data
        fact: {account: analytics, tags: {}}
        fired: [data-accounts]
      - name: everything else goes to platform
        fact: {account: sandbox, tags: {}}
        fired: [fallback]
    ```
    """


@_builtin(
    "verdict",
    {
        "type": "object",
        "required": ["decision"],
        "properties": {
            "decision": {"enum": ["allow", "warn", "deny"], "description": "The verdict."},
            "message": {**_TEMPLATE, "description": "Why; shown to whoever is blocked."},
        },
        "additionalProperties": False,
    },
)
def _verdict() -> None:
    """Allow, warn or deny, with a message: the policy decision.

    An outcome's ``verdict`` is the strictest of its matches (deny, then warn, then allow).

    ```yaml
    kind: policy
    rules:
      - id: no-huge-instances
        when: type == 'aws_instance' and instance_type in huge_types
        action: verdict
        params:
          decision: deny
          message: "{address} uses {instance_type}; ask FinOps first"
    vars:
      huge_types: [x2iedn.32xlarge, u-12tb1.112xlarge]
    tests:
      - name: a huge instance is denied
        fact: {type: aws_instance, address: aws_instance.db, instance_type: x2iedn.32xlarge}
        verdict: deny
        actions:
          no-huge-instances:
            message: aws_instance.db uses x2iedn.32xlarge; ask FinOps first
      - name: a small one passes
        fact: {type: aws_instance, address: aws_instance.web, instance_type: t3.micro}
        fired: []
    ```
    """


#: The process-wide registry: the built-ins plus whatever :func:`register_action` adds.
ACTIONS = ActionRegistry()
for _spec in (_set, _recommend, _emit, _route, _verdict):
    ACTIONS.add(_spec)


@overload
def register_action(function: _F, /) -> _F: ...


@overload
def register_action(
    name: str | None = None,
    /,
    *,
    schema: Mapping[str, Any] | None = None,
    example: str | None = None,
    updates_context: bool = False,
    pure: bool = False,
    registry: ActionRegistry | None = None,
    replace: bool = False,
) -> Callable[[_F], _F]: ...


def register_action(
    name: Any = None,
    /,
    *,
    schema: Mapping[str, Any] | None = None,
    example: str | None = None,
    updates_context: bool = False,
    pure: bool = False,
    registry: ActionRegistry | None = None,
    replace: bool = False,
) -> Any:
    """Register a Python callable as a rule action (the host application's ``ACTION_MAP``).

    Use bare (``@register_action``, registered under the function's name) or with a name and
    options (``@register_action("flag", schema={...})``). The callable is invoked as
    ``function(context, **params)`` for each match and its return value is recorded on the
    match. It registers into :data:`ACTIONS` unless ``registry`` is given.
    """
    target = registry if registry is not None else ACTIONS

    def decorate(function: _F, action_name: str | None = None) -> _F:
        target.register(
            action_name or function.__name__,
            function,
            schema=schema,
            example=example,
            updates_context=updates_context,
            pure=pure,
            replace=replace,
        )
        return function

    if callable(name):
        return decorate(name)
    return lambda function: decorate(function, name)


#: Names the host application provides to every rule set's conditions (watch lists, thresholds),
#: besides each file's own ``vars``; see :func:`register_constants`.
CONSTANTS: dict[str, Any] = {}


def register_constants(**values: Any) -> None:
    """Make ``values`` available by name to the conditions of every rule set loaded afterwards.

    A rule file's own ``vars`` win over these; ``load_rules(constants=…)`` replaces them for
    that one call.
    Values are read when a rule set is loaded (compiled in), not when it is evaluated.
    """
    for name in values:
        if not _NAME.match(name) or "." in name or "-" in name:
            raise ConfigError(
                f"invalid constant name {name!r}",
                fix="use letters, digits and '_', starting with a letter",
            )
    CONSTANTS.update(values)
