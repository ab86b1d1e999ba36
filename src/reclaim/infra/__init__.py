"""Terraform/OpenTofu stacks orchestrated on the durable engine, gated by the policy checks.

:func:`load_config` reads ``reclaim-infra.yaml`` (stacks, declared dependencies, auto-apply,
tracked refs) and infers ``terraform_remote_state`` edges from the HCL; :class:`StackGraph`
checks and draws the DAG; :class:`Orchestrator` runs plan → policy check → apply over it as one
durable workflow, with run triggers, stack locks and output history (:class:`InfraStore`),
and :meth:`Orchestrator.drift` finds stacks whose infrastructure drifted. See docs/infra.md.
"""

from reclaim.infra.config import CONFIG_FILE, Edge, InfraConfig, Stack, StateAddress, load_config
from reclaim.infra.graph import GraphFormat, StackGraph
from reclaim.infra.orchestrator import (
    DriftReport,
    InfraRun,
    Orchestrator,
    PlanOutcome,
    RunInput,
    StackResult,
    StackStatus,
)
from reclaim.infra.store import InfraStore, LockHeld, OutputVersion, StateMark
from reclaim.infra.terraform import Terraform, TerraformFailed

__all__ = [
    "CONFIG_FILE",
    "DriftReport",
    "Edge",
    "GraphFormat",
    "InfraConfig",
    "InfraRun",
    "InfraStore",
    "LockHeld",
    "Orchestrator",
    "OutputVersion",
    "PlanOutcome",
    "RunInput",
    "Stack",
    "StackGraph",
    "StackResult",
    "StackStatus",
    "StateAddress",
    "StateMark",
    "Terraform",
    "TerraformFailed",
    "load_config",
]
