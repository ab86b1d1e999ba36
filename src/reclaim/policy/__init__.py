"""Policy as code for infrastructure pipelines: check Terraform/OpenTofu plans in CI.

Read a plan (or a state) with :func:`load_plan`, load policy files with :func:`load_policies`
(or :func:`builtin_pack_path` for the built-in pack), then :func:`check_plan` gives a
:class:`Report` of findings, each with the rules engine's explanation. :mod:`reclaim.policy.formats`
writes it as JSON, SARIF 2.1.0, JUnit XML or Markdown; :func:`run_policy_tests` runs plan tests.
See docs/policy.md.
"""

from reclaim.policy.check import Finding, Report, check_plan
from reclaim.policy.facts import FACT_FIELDS, PLAN_ADDRESS, build_facts
from reclaim.policy.plan import Plan, PlanError, ResourceChange, load_plan, parse_plan
from reclaim.policy.policies import (
    POLICY_ACTIONS,
    PolicyException,
    PolicySet,
    builtin_pack_path,
    find_policy_files,
    load_policies,
)
from reclaim.policy.pricing import PriceTable, load_prices
from reclaim.policy.values import REDACTED

__all__ = [
    "FACT_FIELDS",
    "PLAN_ADDRESS",
    "POLICY_ACTIONS",
    "REDACTED",
    "Finding",
    "Plan",
    "PlanError",
    "PolicyException",
    "PolicySet",
    "PriceTable",
    "Report",
    "ResourceChange",
    "build_facts",
    "builtin_pack_path",
    "check_plan",
    "find_policy_files",
    "load_plan",
    "load_policies",
    "load_prices",
    "parse_plan",
]
