"""Property-based fuzzing of the whole public schema, over real HTTP, against a demo of its own.

Hypothesis and hypothesis-graphql generate operations from the schema the running gateway
introspects (valid ones, and ones with a single schema violation), with their arguments written
inline or passed as variables, sent by GET or POST, as an ALLIANCE_ADMIN, OPS or a CLINICIAN.
Whatever is sent, the gateway must answer without a 5xx, in JSON that decodes strictly as UTF-8,
and with no INTERNAL_SERVER_ERROR: a caller's mistake has a code that says so.

The demo is this module's own (its writes stay out of the other tests' data). Every finding is
collected rather than shrunk, and reported together; the run is derandomized, so CI repeats it.
To fuzz longer and elsewhere: FUZZ_EXAMPLES=20000 FUZZ_RANDOM=1 uv run pytest tests/test_fuzz_schema.py"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any

import httpx
import pytest
from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLScalarType,
    GraphQLSchema,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    ast_from_value,
    build_client_schema,
    get_introspection_query,
    get_nullable_type,
    parse_type,
    print_ast,
    specified_scalar_types,
    value_from_ast_untyped,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from gateway.app import create_app
from gateway.demo import provision
from gateway.settings import load_settings
from tests.conftest import Demo, serving

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3000"))
DERANDOMIZE = not os.environ.get("FUZZ_RANDOM")
ROLES = (("ALLIANCE_ADMIN", None), ("OPS", None), ("CLINICIAN", "LHZY"))
GRAPHQL_RESPONSE = "application/graphql-response+json"
# GET puts the document in the URL; uvicorn refuses request lines much past 16 KiB.
MAX_GET_URL = 8_000


@pytest.fixture(scope="module")
async def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, Demo]]:
    root = tmp_path_factory.mktemp("fuzz")
    prepared = await provision.prepare(root, reset=False, registry_dsn=None, graphql_url="")
    try:
        demo = Demo(root=root, info=json.loads(prepared.paths.demo_json.read_text()))
        settings_ = load_settings(root / "alliance.toml", events={"watch": False})
        async with serving(create_app(settings_)) as url:
            yield url, demo
    finally:
        assert prepared.embedded is not None
        prepared.embedded.stop()


@dataclass
class Findings:
    sent: int = 0
    # What the answers were: "200 data", "400 GRAPHQL_VALIDATION_FAILED", ...
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, why: str, request: dict[str, Any], response: httpx.Response | None) -> None:
        key = f"{why} {request['document'][:80]}"
        if key in self.seen or len(self.problems) >= 50:
            return
        self.seen.add(key)
        answer = {"status": response.status_code, "body": response.text[:600]} if response else {}
        self.problems.append({"why": why, **request, **answer})


# Where a generated value is swapped, half the time, for one the demo really has, so that
# operations get past "no such id" into the resolvers and sources behind it.
HOSPITAL_FIELDS = {"toHospital", "invitedHospital", "homeHospital", "hospital", "host", "code"}


@dataclass
class Pools:
    """Real values of the demo: global ids of every kind, cursors, hospital codes, resident ids."""

    ids: list[str]
    cursors: list[str]
    codes: list[str]
    resident_ids: list[str]


Draw = Callable[[st.SearchStrategy[Any]], Any]


# Digits a forged key may carry: out of range, negative, non-ASCII (Arabic-Indic, full-width).
FORGED_DIGITS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(alphabet="0123456789٠١٢٣٤٥٦٧٨٩０１２３", min_size=1, max_size=25),
)
# What a hostile client puts into a string.
HOSTILE = st.sampled_from(["\x00", "\ud800", "\udfff", "'; --", "\u202e", "x" * 10_000, ""])


def _forged(value: str, draw: Draw) -> str:
    """A real global id or cursor (base64url of text) with one of its numbers replaced."""
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
    except ValueError:
        return value
    numbers = list(re.finditer(r"\d+", text))
    digits = draw(FORGED_DIGITS)
    if numbers:
        found = draw(st.sampled_from(numbers))
        text = text[: found.start()] + digits + text[found.end() :]
    else:
        text += digits
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _realistic(value: Any, type_: Any, name: str, pools: Pools, draw: Draw) -> Any:
    """`value` (of GraphQL input type `type_`, as JSON) with some leaves replaced by real ones,
    forged ones or hostile strings."""
    nullable = get_nullable_type(type_) if type_ is not None else None
    if isinstance(nullable, GraphQLList):
        if isinstance(value, list):
            return [_realistic(v, nullable.of_type, name, pools, draw) for v in value]
        return value
    if isinstance(nullable, GraphQLInputObjectType):
        if isinstance(value, dict):
            fields = nullable.fields
            return {
                k: _realistic(v, fields[k].type if k in fields else None, k, pools, draw)
                for k, v in value.items()
            }
        return value
    pool: list[str] = []
    forgeable = False
    if isinstance(nullable, GraphQLScalarType) and nullable.name == "ID":
        pool, forgeable = pools.ids, True
    elif name in HOSPITAL_FIELDS or name in ("members", "hospitals", "toHospitals"):
        pool = pools.codes
    elif name == "after":
        pool, forgeable = pools.cursors, True
    elif name == "residentId":
        pool = pools.resident_ids
    choice = draw(st.sampled_from(("generated", "real", "forged", "hostile")))
    if choice == "real" and pool:
        return draw(st.sampled_from(pool))
    if choice == "forged" and forgeable:
        return _forged(draw(st.sampled_from(pool)), draw)
    if choice == "hostile" and isinstance(value, str):
        return value + draw(HOSTILE)
    return value


def _rewrite(
    document: DocumentNode, schema: GraphQLSchema, pools: Pools, draw: Draw, inline: bool
) -> tuple[DocumentNode, dict[str, Any]]:
    """The same operations with their root fields' arguments made realistic (`_realistic`), and
    passed as variables, or (`inline`) written back into the document where they can be."""
    variables: dict[str, Any] = {}
    definitions = []
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode):
            definitions.append(operation)
            continue
        mutation = operation.operation is OperationType.MUTATION
        root = schema.mutation_type if mutation else schema.query_type
        declared = list(operation.variable_definitions or ())
        selections = []
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode) or root is None:
                selections.append(selection)
                continue
            field_ = root.fields.get(selection.name.value)
            if field_ is None:
                selections.append(selection)  # not in the schema: left for validation
                continue
            arguments = []
            for argument in selection.arguments or ():
                spec = field_.args.get(argument.name.value)
                if spec is None:
                    arguments.append(argument)
                    continue
                value = _realistic(
                    value_from_ast_untyped(argument.value),
                    spec.type,
                    argument.name.value,
                    pools,
                    draw,
                )
                literal = _literal(value, spec.type) if inline else None
                if literal is not None:
                    arguments.append(ArgumentNode(name=argument.name, value=literal))
                    continue
                name = f"v{len(variables)}"
                variables[name] = value
                variable = VariableNode(name=NameNode(value=name))
                declared.append(
                    VariableDefinitionNode(
                        variable=variable, type=parse_type(str(spec.type)), directives=()
                    )
                )
                arguments.append(ArgumentNode(name=argument.name, value=variable))
            selections.append(replace(selection, arguments=tuple(arguments)))
        definitions.append(
            replace(
                operation,
                variable_definitions=tuple(declared),
                selection_set=replace(operation.selection_set, selections=tuple(selections)),
            )
        )
    return replace(document, definitions=tuple(definitions)), variables


def _literal(value: Any, type_: Any) -> ValueNode | None:
    """`value` as a literal of `type_`, or None if it is not one (a schema violation)."""
    try:
        return ast_from_value(value, type_)
    except (GraphQLError, TypeError, ValueError):
        return None


def _custom_scalars(schema: GraphQLSchema) -> dict[str, st.SearchStrategy[StringValueNode]]:
    """Well-formed values and junk for each scalar of the gateway's own (Date, DateTime, ...)."""
    junk = st.text(max_size=40)
    strategies: dict[str, st.SearchStrategy[StringValueNode]] = {}
    for name, type_ in schema.type_map.items():
        if not isinstance(type_, GraphQLScalarType) or name in specified_scalar_types:
            continue
        if "DateTime" in name:
            good = st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda d: d.isoformat())
        elif "Date" in name:
            good = st.dates().map(lambda d: d.isoformat())
        else:
            good = junk
        strategies[name] = (good | junk).map(lambda v: StringValueNode(value=v))
    return strategies


def _short_utf8(params: dict[str, str]) -> bool:
    """Whether the parameters fit a GET request (UTF-8 in a URL of acceptable length)."""
    try:
        return len(str(httpx.QueryParams(params)).encode("utf-8")) < MAX_GET_URL
    except UnicodeEncodeError:
        return False


def _check(findings: Findings, request: dict[str, Any], response: httpx.Response) -> None:
    findings.sent += 1
    if response.status_code >= 500:
        findings.add(f"HTTP {response.status_code}", request, response)
        return
    if not response.headers.get("content-type", "").startswith(
        ("application/json", GRAPHQL_RESPONSE)
    ):
        findings.add("not JSON", request, response)
        return
    try:
        body = json.loads(response.content.decode("utf-8"))
    except ValueError:
        findings.add("invalid JSON or UTF-8", request, response)
        return
    codes = sorted({str((e.get("extensions") or {}).get("code")) for e in body.get("errors") or []})
    data = body.get("data")
    findings.outcomes[
        f"{response.status_code} {'data ' if data else ''}{' '.join(codes)}".strip()
    ] += 1
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code is None:
            findings.add("an error without a code", request, response)
        elif code == "INTERNAL_SERVER_ERROR":
            findings.add("INTERNAL_SERVER_ERROR", request, response)


def _fuzz(url: str, schema: GraphQLSchema, tokens: dict[str, str], pools: Pools) -> Findings:
    findings = Findings()
    scalars = _custom_scalars(schema)
    operations = st.one_of(
        *(
            from_schema(schema, custom_scalars=scalars, print_ast=lambda d: d, mode=mode)
            for mode in (Mode.POSITIVE, Mode.NEGATIVE)
        )
    )

    with httpx.Client(base_url=url, timeout=30) as http:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=DERANDOMIZE,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            document=operations,
            role=st.sampled_from(ROLES),
            inline=st.booleans(),
            by_get=st.booleans(),
            data=st.data(),
        )
        def send(
            document: DocumentNode,
            role: tuple[str, str | None],
            inline: bool,
            by_get: bool,
            data: st.DataObject,
        ) -> None:
            document, variables = _rewrite(document, schema, pools, data.draw, inline)
            text = print_ast(document)
            headers = {"authorization": f"Bearer {tokens[role[0]]}", "accept": GRAPHQL_RESPONSE}
            request = {"role": role[0], "document": text, "variables": variables}
            is_query = all(
                not isinstance(d, OperationDefinitionNode) or d.operation is OperationType.QUERY
                for d in document.definitions
            )
            params = {"query": text, "variables": json.dumps(variables)}
            try:
                if by_get and is_query and _short_utf8(params):
                    request["method"] = "GET"
                    response = http.get("/graphql", params=params, headers=headers)
                else:
                    request["method"] = "POST"
                    # JSON escapes (ASCII): a lone surrogate goes as \\udXXX, as from a browser.
                    body = json.dumps({"query": text, "variables": variables}).encode()
                    headers["content-type"] = "application/json"
                    response = http.post("/graphql", content=body, headers=headers)
            except httpx.TransportError as e:
                findings.sent += 1
                findings.add(f"no answer: {type(e).__name__}", request, None)
                return
            _check(findings, request, response)

        send()
    return findings


LISTS = ("referrals", "consultations", "trainingEvents", "placements", "membershipApplications")


async def _pools(http: httpx.AsyncClient, demo: Demo, tokens: dict[str, str]) -> Pools:
    async def ask(document: str, role: str) -> Any:
        headers = {"authorization": f"Bearer {tokens[role]}"}
        body = (await http.post("/graphql", json={"query": document}, headers=headers)).json()
        return body.get("data") or {}

    def edges(connection: Any) -> list[dict[str, Any]]:
        return list((connection or {}).get("edges") or [])

    pools = Pools(ids=[], cursors=[], codes=[], resident_ids=[])
    for name in LISTS:
        data = await ask(
            f"{{ {name}(first: 5) {{ edges {{ cursor node {{ id }} }} }} }}", "ALLIANCE_ADMIN"
        )
        for edge in edges(data.get(name)):
            pools.ids.append(edge["node"]["id"])
            pools.cursors.append(edge["cursor"])
    data = await ask(
        "{ alliance { members(first: 50) { edges { cursor node { id code agreement { id } } } } } }",
        "ALLIANCE_ADMIN",
    )
    for edge in edges((data.get("alliance") or {}).get("members")):
        node = edge["node"]
        pools.ids += [node["id"], *([node["agreement"]["id"]] if node.get("agreement") else [])]
        pools.codes.append(node["code"])
        pools.cursors.append(edge["cursor"])
    pools.resident_ids = [p["resident_id"] for p in demo.info["sample_patients"]][:10]
    for resident in pools.resident_ids[:3]:
        data = await ask(
            f'{{ testResults(patient: {{residentId: "{resident}"}}, first: 5) '
            "{ edges { cursor node { id } } } }",
            "CLINICIAN",
        )
        for edge in edges(data.get("testResults")):
            pools.ids.append(edge["node"]["id"])
            pools.cursors.append(edge["cursor"])
    assert pools.ids and pools.codes and pools.cursors
    return pools


async def test_generated_operations_never_fail_the_gateway(fuzz_target: tuple[str, Demo]) -> None:
    url, demo = fuzz_target
    tokens = {role: demo.token(role, member) for role, member in ROLES}
    async with httpx.AsyncClient(base_url=url) as http:
        response = await http.post(
            "/graphql",
            json={"query": get_introspection_query()},
            headers={"authorization": f"Bearer {tokens['OPS']}"},
        )
        schema = build_client_schema(response.json()["data"])
        pools = await _pools(http, demo, tokens)
    started = time.monotonic()
    # The server answers on this event loop; the property runs in a thread of its own.
    findings = await asyncio.to_thread(_fuzz, url, schema, tokens, pools)
    took = time.monotonic() - started
    print(f"fuzz: {findings.sent} requests in {took:.1f} s, {len(findings.problems)} findings")
    for outcome, count in findings.outcomes.most_common():
        print(f"  {count:6d}  {outcome}")
    assert findings.sent >= EXAMPLES * 0.9
    assert not findings.problems, json.dumps(findings.problems, ensure_ascii=False, indent=1)
