"""The schema and model stages of checking a rule document (see :mod:`reclaim.rules.loader`).

:class:`RuleChecker` validates a read YAML document against the file format, compiles every
condition and parameter, resolves actions, and collects every error with its position.
"""

from __future__ import annotations

__all__ = ["RuleChecker"]

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reclaim.errors import ConfigError, SourceLocation
from reclaim.rules.actions import ActionRegistry, ActionSpec
from reclaim.rules.errors import (
    ActionParamsError,
    DuplicateRuleIdError,
    RuleFileError,
    RuleSchemaError,
    TypeMismatchError,
    UnknownActionError,
    UnknownKeyError,
    YamlLimitError,
)
from reclaim.rules.expression import (
    Expression,
    ExpressionError,
    FactSchema,
    FieldType,
    Limits,
    compile_expression,
)
from reclaim.rules.expression.nodes import Const, Node, children
from reclaim.rules.params import UNCHECKED, param_kind, parse_template, validate_json
from reclaim.rules.ruleset import ParamValue, Rule, RuleSet
from reclaim.rules.source import Path, YamlDocument
from reclaim.rules.spec import RuleSetHeader, RuleSpec, RuleTestCase

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

# The pydantic models of the format (reclaim.rules.model) are imported only to validate a
# mapping the plain reader of reclaim.rules.spec did not take: they word the errors.

# JSON Schema type names accepted for each static expression type.
_JSON_TYPES: dict[FieldType, set[str]] = {
    FieldType.NUMBER: {"number"},
    FieldType.INTEGER: {"integer", "number"},
    FieldType.STRING: {"string"},
    FieldType.BOOLEAN: {"boolean"},
    FieldType.DATETIME: {"string"},
    FieldType.LIST: {"array"},
    FieldType.MAP: {"object"},
}


def _did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


class RuleChecker:
    """Runs the schema and model stages over one document, collecting errors."""

    def __init__(
        self,
        document: YamlDocument,
        *,
        actions: ActionRegistry,
        constants: Mapping[str, Any],
        limits: Limits,
    ) -> None:
        self.doc = document
        self.actions = actions
        self.host_constants = constants
        self.limits = limits
        self.errors: list[ConfigError] = []
        # The file's running totals against the per-file limits (see Limits.max_file_nodes).
        self.total_nodes = 0
        self.total_constant_items = 0
        self.over_budget = False

    # -- schema stage -------------------------------------------------------------------------

    def add_validation_errors(
        self, exc: ValidationError, prefix: Path, model: type[BaseModel], what: str
    ) -> None:
        """Turn pydantic's errors for the mapping at ``prefix`` into positioned ConfigErrors;
        ``what`` (e.g. "rule 'idle'") starts each message."""
        for error in exc.errors():
            loc = tuple(error["loc"])
            path = (*prefix, *loc)
            kind = error["type"]
            where = f"{what}: " if what else ""
            if kind == "extra_forbidden":
                from reclaim.rules.model import known_keys

                key = str(loc[-1])
                owner = _model_at(model, loc[:-1])
                hint = _did_you_mean(key, known_keys(owner)) if owner else None
                self.errors.append(
                    UnknownKeyError(
                        f"{where}unknown key {key!r}",
                        location=self.doc.location(path, key=True),
                        fix=hint or f"remove it; known keys: {', '.join(known_keys(owner))}"
                        if owner
                        else "remove it",
                    )
                )
            elif kind == "missing":
                self.errors.append(
                    RuleSchemaError(
                        f"{where}missing required key {str(loc[-1])!r}",
                        location=self.doc.location(path[:-1]),
                        fix=f"add '{loc[-1]}:'",
                    )
                )
            elif kind == "literal_error":
                expected = error.get("ctx", {}).get("expected", "")
                value = error.get("input")
                hint = (
                    _did_you_mean(value, re.findall(r"'([^']*)'", str(expected)))
                    if isinstance(value, str)
                    else None
                )
                self.errors.append(
                    RuleSchemaError(
                        f"{where}{_dotted(loc)} is {value!r}; it must be {expected}",
                        location=self.doc.location(path),
                        fix=hint or f"write one of {expected}",
                    )
                )
            else:
                self.errors.append(
                    RuleSchemaError(
                        f"{where}{_dotted(loc)}: {error['msg'].lower()}",
                        location=self.doc.location(path),
                        fix="see 'reclaim rules schema' for the rule file format",
                    )
                )

    def check(self, name: str) -> RuleSet | None:
        data = self.doc.data
        if not isinstance(data, dict):
            self.errors.append(
                RuleSchemaError(
                    "a rule file must be a mapping with a 'rules:' list",
                    location=self.doc.location(()),
                    fix="start the file with 'rules:'",
                )
            )
            return None
        header = {key: value for key, value in data.items() if key not in ("rules", "tests")}
        header_model = RuleSetHeader.read(header)
        if header_model is None:
            header_model = self._validate_header(header)
        raw_rules = data.get("rules")
        if "rules" not in data:
            self.errors.append(
                RuleSchemaError(
                    "missing required key 'rules'",
                    location=self.doc.location(()),
                    fix="add a 'rules:' list",
                )
            )
            raw_rules = []
        elif not isinstance(raw_rules, list):
            self.errors.append(
                RuleSchemaError(
                    "'rules' must be a list of rules",
                    location=self.doc.location(("rules",)),
                    fix="write each rule as a '- id: …' item under 'rules:'",
                )
            )
            raw_rules = []
        if len(raw_rules) > self.limits.max_rules:
            self.errors.append(
                YamlLimitError(
                    f"the file has {len(raw_rules):,} rules; a rule file may have "
                    f"{self.limits.max_rules:,}",
                    location=self.doc.location(("rules",)),
                    fix="split the rules into several files in one folder",
                )
            )
            return None
        rule_models: list[tuple[int, RuleSpec]] = []
        for index, raw in enumerate(raw_rules):
            rule = RuleSpec.read(raw)
            if rule is None:
                rule = self._validate_rule(raw, index, header_model)
            if rule is not None:
                rule_models.append((index, rule))
        self._check_duplicate_ids(raw_rules)
        tests = self.check_tests(data.get("tests"), ("tests",))
        if header_model is None:
            return None
        return self.model_stage(header_model, rule_models, tests, name)

    def _validate_header(self, header: dict[Any, Any]) -> RuleSetHeader | None:
        """The header validated by the pydantic model, every error recorded."""
        from pydantic import ValidationError

        from reclaim.rules.model import RuleSetModel

        try:
            return RuleSetHeader.from_model(RuleSetModel.model_validate({**header, "rules": []}))
        except ValidationError as exc:
            self.add_validation_errors(exc, (), RuleSetModel, "")
            # Check the rules anyway, with the header keys that were valid, so one run
            # reports every error of the file.
            bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
            try:
                return RuleSetHeader.from_model(
                    RuleSetModel.model_validate(
                        {key: value for key, value in header.items() if key not in bad}
                        | {"rules": []}
                    )
                )
            except ValidationError:
                return None

    def _validate_rule(self, raw: Any, index: int, header: RuleSetHeader | None) -> RuleSpec | None:
        """The rule validated by the pydantic model, every error recorded."""
        from pydantic import ValidationError

        from reclaim.rules.model import RuleModel

        try:
            return RuleSpec.from_model(RuleModel.model_validate(raw))
        except ValidationError as exc:
            label = raw.get("id") or raw.get("name") if isinstance(raw, dict) else None
            what = f"rule {label!r}" if isinstance(label, str) else f"rule {index + 1}"
            self.add_validation_errors(exc, ("rules", index), RuleModel, what)
            self._check_condition_of_invalid_rule(raw, index, exc, header)
            return None

    def _check_condition_of_invalid_rule(
        self, raw: Any, index: int, exc: ValidationError, header: RuleSetHeader | None
    ) -> None:
        """Compile the condition of a rule that failed the schema stage, if it is readable,
        so its expression errors are reported in the same run."""
        if not isinstance(raw, dict) or header is None:
            return
        key = next((name for name in ("when", "condition") if name in raw), None)
        if key is None or not isinstance(raw[key], str):
            return
        if any(error["loc"] and error["loc"][0] == key for error in exc.errors()):
            return
        schema = self._fact_schema(header, report=False)
        constants = {**self.host_constants, **header.vars}
        self._compile(raw[key], ("rules", index, key), schema, constants)

    def _check_duplicate_ids(self, raw_rules: list[Any]) -> None:
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_rules):
            if not isinstance(raw, dict):
                continue
            key = next((name for name in ("id", "name") if name in raw), None)
            rule_id = raw.get(key) if key else None
            if not isinstance(rule_id, str):
                continue
            if rule_id in seen:
                self.errors.append(
                    DuplicateRuleIdError(
                        f"duplicate rule id {rule_id!r} (first in rule {seen[rule_id] + 1})",
                        location=self.doc.location(("rules", index, key)),
                        fix="give each rule its own id",
                    )
                )
            else:
                seen[rule_id] = index

    def _fact_schema(self, header: RuleSetHeader, *, report: bool) -> FactSchema | None:
        if header.facts is None:
            return None
        try:
            return FactSchema.from_mapping(header.facts)
        except ExpressionError as exc:
            if report:
                self.errors.append(
                    RuleSchemaError(
                        f"facts: {exc.message}",
                        location=self.doc.location(("facts",)),
                        fix=exc.fix,
                    )
                )
            return None

    def check_tests(self, raw_tests: Any, prefix: Path) -> list[RuleTestCase]:
        if raw_tests is None:
            return []
        if not isinstance(raw_tests, list):
            self.errors.append(
                RuleSchemaError(
                    "'tests' must be a list of test cases",
                    location=self.doc.location(prefix),
                    fix="write each test as a '- name: …' item",
                )
            )
            return []
        tests: list[RuleTestCase] = []
        for index, raw in enumerate(raw_tests):
            case = RuleTestCase.read(raw)
            if case is None:
                case = self._validate_test_case(raw, (*prefix, index), f"test {index + 1}")
            if case is not None:
                tests.append(case)
        return tests

    def _validate_test_case(self, raw: Any, path: Path, what: str) -> RuleTestCase | None:
        """The test case validated by the pydantic model, every error recorded."""
        from pydantic import ValidationError

        from reclaim.rules.model import RuleTestCaseModel

        try:
            return RuleTestCase.from_model(RuleTestCaseModel.model_validate(raw))
        except ValidationError as exc:
            self.add_validation_errors(exc, path, RuleTestCaseModel, what)
            return None

    # -- model stage --------------------------------------------------------------------------

    def model_stage(
        self,
        header: RuleSetHeader,
        rule_models: Sequence[tuple[int, RuleSpec]],
        tests: Sequence[RuleTestCase],
        name: str,
    ) -> RuleSet | None:
        schema = self._fact_schema(header, report=True)
        constants = {**self.host_constants, **header.vars}
        if schema is not None:
            for var in sorted(set(header.vars) & schema.names):
                self.errors.append(
                    RuleSchemaError(
                        f"{var!r} is both a declared fact field and a var",
                        location=self.doc.location(("vars", var), key=True),
                        fix="rename one of them",
                    )
                )
        rules: list[Rule] = []
        for index, model in rule_models:
            where = ("rules", index)
            if header.mode == "ordered" and model.priority != 0:
                self.errors.append(
                    RuleSchemaError(
                        f"rule {model.id!r}: priority has no effect in mode 'ordered', where "
                        "rules run in file order",
                        location=self.doc.location((*where, "priority")),
                        fix="remove 'priority', or use mode 'all' or 'first'",
                    )
                )
            rule = self.compile_rule(model, index, schema, constants)
            if rule is not None:
                rules.append(rule)
        if self.errors:
            return None
        return RuleSet(
            name=header.name or name,
            kind=header.kind,
            mode=header.mode,
            rules=tuple(rules),
            vars=dict(header.vars),
            schema=schema,
            description=header.description,
            path=self.doc.path,
            tests=tuple(tests),
        )

    def _key(self, where: Path, *choices: str) -> str:
        raw = self.doc.data["rules"][where[1]]
        return next((key for key in choices if key in raw), choices[0])

    def _compile(
        self,
        source: str,
        path: Path,
        schema: FactSchema | None,
        constants: Mapping[str, Any],
        *,
        offset: int = 0,
    ) -> Expression | None:
        if self.over_budget:
            return None
        location = self.doc.text_location(path)
        if offset and location.column is not None:
            location = SourceLocation(location.path, location.line, location.column + offset)
        try:
            expression = compile_expression(
                source, schema=schema, constants=constants, location=location, limits=self.limits
            )
            self._spend(expression, location)
            return expression
        except RuleFileError as exc:
            self.errors.extend(exc.errors)
        except ExpressionError as exc:
            exc.location = self._in_file(exc.location, location, path, offset)
            self.errors.append(exc)
        return None

    def _spend(self, expression: Expression, location: SourceLocation) -> None:
        """Add one expression to the file's totals; past a per-file limit, record the error
        once and compile nothing more (the file is refused before anything evaluates it)."""
        nodes, items = expression.cost
        self.total_nodes += nodes
        self.total_constant_items += items
        limits = self.limits
        if self.total_nodes > limits.max_file_nodes:
            message = (
                f"the file's conditions and parameters have more than {limits.max_file_nodes:,} "
                "syntax nodes in all"
            )
        elif self.total_constant_items > limits.max_file_constant_items:
            message = (
                "the file's expressions use more than "
                f"{limits.max_file_constant_items:,} characters and list items of constants "
                "in all (each use of a var counts its size)"
            )
        else:
            return
        self.over_budget = True
        self.errors.append(
            YamlLimitError(
                f"{message}; the limit was passed here",
                location=location,
                fix="split the rules into several files, or use long lists in fewer rules",
            )
        )

    def _in_file(
        self,
        reported: SourceLocation | None,
        start: SourceLocation,
        path: Path,
        offset: int,
    ) -> SourceLocation:
        """The file position of an expression error, through folded and block scalars.

        The expression package maps positions as if the expression sat on the file's lines
        verbatim; undo that to get the position inside the expression, then let the document
        map it through the YAML scalar's quoting, folding and indentation.
        """
        if reported is None or reported.line is None or reported.column is None:
            return start
        if start.line is None or start.column is None or reported.path != start.path:
            return reported
        if reported.line == start.line:
            line, column = 1, reported.column - start.column + 1 + offset
        else:
            line, column = reported.line - start.line + 1, reported.column
        return self.doc.locate_in_text(path, line, column)

    def compile_rule(
        self,
        model: RuleSpec,
        index: int,
        schema: FactSchema | None,
        constants: Mapping[str, Any],
    ) -> Rule | None:
        where = ("rules", index)
        when_key = self._key(where, "when", "condition")
        source = ("True" if model.when else "False") if isinstance(model.when, bool) else model.when
        condition = self._compile(source, (*where, when_key), schema, constants)
        if condition is not None and condition.result_type not in (
            FieldType.BOOLEAN,
            FieldType.ANY,
        ):
            self.errors.append(
                TypeMismatchError(
                    f"rule {model.id!r}: the condition gives a {condition.result_type.value}, "
                    "not true or false",
                    location=self.doc.text_location((*where, when_key)),
                    fix="compare it, e.g. 'x > 0', 'x is not None' or 'len(x) > 0'",
                )
            )
        spec: ActionSpec | None = None
        if model.action is not None:
            spec = self.actions.get(model.action)
            if spec is None:
                hint = _did_you_mean(model.action, self.actions.names())
                self.errors.append(
                    UnknownActionError(
                        f"rule {model.id!r}: unknown action {model.action!r}",
                        location=self.doc.location((*where, "action")),
                        fix=hint
                        or "register it with @register_action (on the command line: "
                        "--import the module that does), or use one of: "
                        + ", ".join(self.actions.names()),
                    )
                )
        elif model.params:
            self.errors.append(
                ActionParamsError(
                    f"rule {model.id!r}: params given without an action",
                    location=self.doc.location((*where, "params"), key=True),
                    fix="add 'action:' or remove 'params:'",
                )
            )
        params = self.compile_params(model, spec, where, schema, constants)
        if condition is None or params is None:
            return None
        return Rule(
            id=model.id,
            condition=condition,
            action=spec,
            params=params,
            index=index,
            description=model.description,
            priority=model.priority,
            tags=tuple(model.tags),
            enabled=model.enabled,
            location=self.doc.location(where),
        )

    def compile_params(
        self,
        model: RuleSpec,
        spec: ActionSpec | None,
        where: Path,
        schema: FactSchema | None,
        constants: Mapping[str, Any],
    ) -> dict[str, ParamValue] | None:
        if spec is None:
            return {} if model.action is None else None
        before = len(self.errors)
        checked = {
            name: UNCHECKED
            if param_kind(spec.schema, name) == "expression" and isinstance(value, str)
            else value
            for name, value in model.params.items()
        }
        for inner, problem in validate_json(checked, spec.schema):
            path = (*where, "params", *inner)
            self.errors.append(
                ActionParamsError(
                    f"rule {model.id!r}: action {spec.name!r}: {problem}",
                    location=self.doc.location(path if inner else (*where, "action")),
                    fix=_params_fix(spec),
                )
            )
        compiled: dict[str, ParamValue] = {}
        for name, value in model.params.items():
            path = (*where, "params", name)
            kind = param_kind(spec.schema, name)
            param = self.compile_value(value, kind, path, schema, constants)
            if param is None:
                continue
            compiled[name] = param
            if param.kind == "expr":
                expected = _property_type(spec.schema, name)
                actual = param.value.result_type
                allowed = _JSON_TYPES.get(actual)
                if expected and allowed is not None and not (allowed & expected):
                    self.errors.append(
                        TypeMismatchError(
                            f"rule {model.id!r}: parameter {name!r} of {spec.name!r} must be "
                            f"{' or '.join(sorted(expected))}, but the expression gives a "
                            f"{actual.value}",
                            location=self.doc.text_location(path),
                            fix="change the expression so it gives "
                            + " or ".join(sorted(expected)),
                        )
                    )
        return compiled if len(self.errors) == before else None

    def compile_value(
        self,
        value: Any,
        kind: str,
        path: Path,
        schema: FactSchema | None,
        constants: Mapping[str, Any],
    ) -> ParamValue | None:
        """Compile one parameter value of the given kind (see :mod:`reclaim.rules.params`).

        Expression parameters take non-string YAML values, lists included, as written (an
        expression can itself be a list: ``"[a, b]"``); template parameters template each
        string of a list.
        """
        if kind == "literal" or not isinstance(value, str | list):
            return ParamValue("const", value)
        if isinstance(value, list):
            if kind == "expression":
                return ParamValue("const", value)
            items = [
                self.compile_value(item, kind, (*path, index), schema, constants)
                for index, item in enumerate(value)
            ]
            if any(item is None for item in items):
                return None
            if all(item is not None and item.kind == "const" for item in items):
                return ParamValue("const", value)
            return ParamValue("list", tuple(items))
        if kind == "expression":
            expression = self._compile(value, path, schema, constants)
            return None if expression is None else ParamValue("expr", expression)
        try:
            parts = parse_template(value)
        except ValueError as exc:
            message, offset = exc.args
            location = self.doc.text_location(path)
            self.errors.append(
                ActionParamsError(
                    f"{message}",
                    location=SourceLocation(
                        location.path, location.line, (location.column or 1) + offset
                    ),
                    fix="close each '{' with '}', or write '{{' and '}}' for literal braces",
                )
            )
            return None
        compiled: list[Any] = []
        for part in parts:
            if part.source is None:
                compiled.append(part.text or "")
                continue
            expression = self._compile(part.source, path, schema, constants, offset=part.offset)
            if expression is None:
                return None
            compiled.append(expression)
        if all(isinstance(part, str) for part in compiled):
            return ParamValue("const", "".join(compiled))
        return ParamValue("template", tuple(compiled))


def expression_cost(tree: Node) -> tuple[int, int]:
    """(syntax nodes, characters and items of constants) of a checked tree."""
    nodes = items = 0
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes += 1
        if isinstance(node, Const) and isinstance(node.value, str | list | tuple | Mapping):
            items += len(node.value)
        stack.extend(children(node))
    return nodes, items


def _params_fix(spec: ActionSpec) -> str:
    properties = spec.schema.get("properties", {})
    required = spec.schema.get("required", [])
    if properties:
        names = ", ".join(
            f"{name}{' (required)' if name in required else ''}" for name in properties
        )
        return f"{spec.name!r} takes: {names}"
    return f"see 'reclaim rules schema' for the parameters of {spec.name!r}"


def _property_type(schema: Mapping[str, Any], name: str) -> set[str]:
    entry = schema.get("properties", {}).get(name)
    if entry is None:
        extra = schema.get("additionalProperties")
        entry = extra if isinstance(extra, Mapping) else {}
    declared = entry.get("type")
    if declared is None:
        return set()
    return {declared} if isinstance(declared, str) else set(declared)


def _model_at(model: type[BaseModel], loc: Sequence[Any]) -> type[BaseModel] | None:
    """The pydantic model that owns the mapping at ``loc`` inside ``model``."""
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        field_info = current.model_fields.get(str(part))
        if field_info is None:
            return None
        current = _inner_model(field_info.annotation)
    return current


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the file"
