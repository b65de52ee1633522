"""The executable schema: the public contract of schema/ with the runtime's extensions, validation
rules and executor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import strawberry
from strawberry.extensions import AddValidationRules, SchemaExtension, ValidationCache
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from gateway.runtime.errors import PublicErrors
from gateway.runtime.execution import GatewayExecutor
from gateway.runtime.limits import IntrospectionDisabled, LimitedParser, QueryLimits, limit_rules
from gateway.runtime.operation_hooks import GatewayExtensionsRunner
from schema import direct
from schema.consultations import Consultation
from schema.events import Subscription
from schema.mutation import Mutation
from schema.query import Query
from schema.referrals import Referral
from schema.results import RecognitionDecision, TestResult
from schema.scalars import DateTime
from schema.training import Placement, TrainingEvent
from schema.types import Agreement, Alliance, Hospital, Member, MembershipApplication


class _Schema(strawberry.Schema):
    def process_errors(self, errors: Any, execution_context: Any = None) -> None:
        # PublicErrors logs the unexpected ones; expected refusals are not operational events.
        return None

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        # A subscription holds its operation's hooks for its whole life: kept lighter there.
        return GatewayExtensionsRunner(execution_context=execution_context, extensions=extensions)


def build_schema(
    *,
    introspection: bool,
    limits: QueryLimits | None = None,
    extensions_before: Sequence[Any] = (),
) -> strawberry.Schema:
    """`extensions_before` wrap the rest: they see the operation's final result last."""
    # The rule classes are made once: the validation cache is keyed by them, and rules made
    # afresh per request would miss it every time.
    limits = limits or QueryLimits()
    rules: list[Any] = limit_rules(limits)
    if not introspection:
        rules.append(IntrospectionDisabled)
    extensions: list[Any] = [
        *extensions_before,
        PublicErrors,
        lambda: AddValidationRules(rules),
        # Both caches live at module level, shared by every request's instance, and bounded.
        # LimitedParser counts tokens while parsing (Strawberry's ParserCache and MaxTokensLimiter
        # would refuse with a generic syntax error).
        lambda: LimitedParser(limits, maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    schema = _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[
            Alliance,
            Hospital,
            Member,
            Agreement,
            MembershipApplication,
            Referral,
            Consultation,
            TrainingEvent,
            Placement,
            TestResult,
            RecognitionDecision,
        ],
        extensions=extensions,
        execution_context_class=GatewayExecutor,
        config=StrawberryConfig(scalar_map={datetime: DateTime}),
    )
    direct.install(schema._schema)
    return schema
