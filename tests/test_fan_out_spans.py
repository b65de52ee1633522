"""The fan-out span is declared on the fields (schema/fan_out.py): every mutation, and the root
queries that ask members. A new field that fans out must declare it too; this lists the queries."""

from __future__ import annotations

from strawberry.types.base import StrawberryObjectDefinition

from gateway.runtime.build import build_schema
from schema.fan_out import FanOut

FAN_OUT_QUERIES = {
    "referrals",
    "consultations",
    "trainingEvents",
    "placements",
    "testResults",
    "recognitionStatistics",
    "capacityActivities",
    "workReport",
    "workReports",
    "assessment",
    "memberAssessment",
    "node",
}


def _declaring(type_name: str) -> tuple[set[str], set[str]]:
    schema = build_schema(introspection=False)
    definition = schema.get_type_by_name(type_name)
    assert isinstance(definition, StrawberryObjectDefinition)
    name = schema.config.name_converter.from_field
    names = {name(f) for f in definition.fields}
    declared = {
        name(f) for f in definition.fields if any(isinstance(e, FanOut) for e in f.extensions)
    }
    return names, declared


def test_every_mutation_declares_the_fan_out_span() -> None:
    names, declared = _declaring("Mutation")
    assert names and declared == names


def test_the_root_queries_that_ask_members_declare_it_and_no_others() -> None:
    _, declared = _declaring("Query")
    assert declared == FAN_OUT_QUERIES
