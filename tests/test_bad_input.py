"""Bad input gets a clear error with a stable code, never a 500 and never a broken body: strings
with NUL or unpaired surrogates, JSON nested too deeply, token claims of the wrong type, documents
whose operation cannot be chosen, and client-chosen metric labels of any length."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import metrics
from gateway.auth import AuthenticationError, NoGatewayRoleError, TokenVerifier
from gateway.request_checks import RequestRefused, check_json, render_json
from gateway.settings import AuthSettings
from gateway.sse import _frame
from resolvers.access import require_treatment_purpose
from resolvers.errors import GatewayError
from resolvers.principal import Principal, Purpose, Role
from tests.conftest import Api, Demo, error_codes

GRAPHQL_RESPONSE = "application/graphql-response+json"
ISSUER, AUDIENCE = "alliance-gateway-demo", "alliance-gateway"
PROTOCOL = ["graphql-transport-ws"]
QUERY = "{ alliance { name } }"


def _strict_json(response: httpx.Response) -> Any:
    """The body, decoded as the strict UTF-8 JSON a browser or a Go/Rust client would."""
    assert response.headers["content-type"].startswith(("application/json", GRAPHQL_RESPONSE))
    text = response.content.decode("utf-8")  # strict: a lone surrogate would not decode
    return json.loads(text)


def _mint(demo_env: Demo, **claims: Any) -> str:
    """A token signed with the demo key; a claim given as None is left out."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "bad-input-test",
        "iat": now,
        "exp": now + 600,
        "roles": ["ALLIANCE_ADMIN"],
    }
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    key = (demo_env.root / "signing-key.pem").read_text(encoding="ascii")
    return jwt.encode(body, key, algorithm="ES256")


async def _send(
    api: Api,
    body: str | bytes,
    *,
    role: str = "ALLIANCE_ADMIN",
    member: str | None = None,
    accept: str = GRAPHQL_RESPONSE,
) -> httpx.Response:
    return await api.http.post(
        "/graphql",
        content=body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body,
        headers={
            "authorization": f"Bearer {api.demo.token(role, member)}",
            "content-type": "application/json",
            "accept": accept,
        },
    )


def _refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = _strict_json(response)
    assert error_codes(body) == [code], body
    return body["errors"][0]


# -- JSON nested too deeply ---------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _with(key: str, raw: str) -> str:
    """A request body whose `key` object holds `raw` JSON text under "a"."""
    return '{"query": "{ alliance { name } }", "' + key + '": {"a": ' + raw + "}}"


@pytest.mark.parametrize(
    ("where", "body"),
    [
        ("the body itself", _nested(100_000)),
        (
            "variables",
            _with("variables", _nested(100_000)),
        ),
        (
            "extensions",
            _with("extensions", _nested(100_000)),
        ),
        (
            "an object chain",
            '{"query": "{ alliance { name } }", "variables": %s}'
            % ('{"a":' * 5000 + "1" + "}" * 5000),
        ),
        (
            "variables, not deep enough to recurse",
            _with("variables", _nested(60)),
        ),
    ],
)
async def test_json_nested_too_deeply_is_400(api: Api, where: str, body: str) -> None:
    error = _refused(await _send(api, body), 400, "BAD_REQUEST")
    assert "nested" in error["message"], where


async def test_json_nested_too_deeply_in_get_variables_is_400(api: Api) -> None:
    response = await api.http.get(
        "/graphql",
        params={"query": QUERY, "variables": '{"a": ' + _nested(1_500) + "}"},
        headers={"authorization": f"Bearer {api.demo.token('OPS')}", "accept": GRAPHQL_RESPONSE},
    )
    assert "nested" in _refused(response, 400, "BAD_REQUEST")["message"]


async def test_reasonably_nested_variables_still_work(api: Api) -> None:
    body = json.dumps({"query": QUERY, "variables": {"a": [[[[{"b": [1, 2, {"c": "d"}]}]]]]}})
    response = await _send(api, body)
    assert response.status_code == 200, response.text
    assert _strict_json(response)["data"]["alliance"]["name"]


@pytest.mark.parametrize(
    "body",
    [
        '{"query": "{ alliance { name } }", "variables": {"a": NaN}}',
        '{"query": "{ alliance { name } }", "variables": {"a": 1e400}}',
    ],
)
async def test_numbers_json_has_not_are_refused(api: Api, body: str) -> None:
    _refused(await _send(api, body), 400, "BAD_REQUEST")


# -- NUL and unpaired surrogates ----------------------------------------------------------------

NAME_QUERY = "query($name: String) { alliance { name } }"


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        (
            json.dumps({"query": NAME_QUERY, "variables": {"name": "a\x00b"}}),
            "variables.name",
            "U+0000",
        ),
        (
            json.dumps({"query": NAME_QUERY, "variables": {"name": "a\ud800b"}}),
            "variables.name",
            "surrogate",
        ),
        (
            json.dumps({"query": NAME_QUERY, "variables": {"x": [{"y": ["ok", "\udfff"]}]}}),
            "variables.x[0].y[1]",
            "surrogate",
        ),
        (json.dumps({"query": NAME_QUERY, "variables": {"a\x00": 1}}), "variables", "U+0000"),
        (json.dumps({"query": "{ alliance { name } }\x00"}), "query", "U+0000"),
        (json.dumps({"query": "# \ud83d\n{ alliance { name } }"}), "query", "surrogate"),
        (
            json.dumps(
                {
                    "query": '{ alliance { name } } query Q { node(id: "a\\u0000b") { id } }',
                    "operationName": "Q",
                }
            ),
            "query",
            "U+0000",
        ),
        (json.dumps({"query": 'query { node(id: "\\u{0}") { id } }'}), "query", "U+0000"),
        (json.dumps({"query": QUERY, "operationName": "\ud800"}), "operationName", "surrogate"),
        (
            json.dumps({"query": QUERY, "extensions": {"trace": "\x00"}}),
            "extensions.trace",
            "U+0000",
        ),
    ],
)
async def test_nul_and_lone_surrogates_are_refused(
    api: Api, body: str, where: str, what: str
) -> None:
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        error = _refused(await _send(api, body, accept=accept), 400, "BAD_REQUEST")
        assert what in error["message"] and where in error["message"], error
        assert error["extensions"]["parameter"] == where


async def test_a_block_string_may_say_backslash_u0000(api: Api) -> None:
    # Block strings take escapes literally: this is six characters of text, not a NUL.
    body = json.dumps({"query": '{ alliance { name } } # "\\u0000"\n'})
    assert (await _send(api, body)).status_code == 200


async def test_nul_in_get_parameters_is_refused(api: Api) -> None:
    headers = {"authorization": f"Bearer {api.demo.token('OPS')}", "accept": GRAPHQL_RESPONSE}
    response = await api.http.get("/graphql", params={"query": QUERY + "\x00"}, headers=headers)
    assert "U+0000" in _refused(response, 400, "BAD_REQUEST")["message"]
    response = await api.http.get(
        "/graphql",
        params={"query": NAME_QUERY, "variables": json.dumps({"name": "\x00"})},
        headers=headers,
    )
    assert _refused(response, 400, "BAD_REQUEST")["extensions"]["parameter"] == "variables.name"


async def test_nothing_is_stored_from_a_refused_write(api: Api, registry_db: Any) -> None:
    before = await registry_db.fetchval("SELECT count(*) FROM membership_application")
    hospitals = await registry_db.fetchval("SELECT count(*) FROM hospital")
    document = """mutation($input: SubmitMembershipApplicationInput!) {
        submitMembershipApplication(input: $input) { application { id status } } }"""
    hospital = {
        "name": "舞阳县中医院\x00",
        "creditCode": "12411122417001105C",
        "grade": "GRADE_2A",
        "ownership": "PUBLIC",
        "type": "TCM",
        "divisionCode": "411122",
        "specialtyBeds": 40,
        "contactName": "李明",
        "contactPhone": "0395-7212000",
    }
    body = json.dumps({"query": document, "variables": {"input": {"hospital": hospital}}})
    error = _refused(await _send(api, body, role="SECRETARIAT"), 400, "BAD_REQUEST")
    assert error["extensions"]["parameter"] == "variables.input.hospital.name"
    inline = json.dumps(
        {
            "query": 'mutation { submitMembershipApplication(input: {hospital: {name: "舞阳\\u0000", '
            'creditCode: "12411122417001105C", grade: GRADE_2A, ownership: PUBLIC, type: TCM, '
            'divisionCode: "411122", specialtyBeds: 40, contactName: "李明", '
            'contactPhone: "0395-7212000"}}) { application { id } } }'
        }
    )
    _refused(await _send(api, inline, role="SECRETARIAT"), 400, "BAD_REQUEST")
    assert await registry_db.fetchval("SELECT count(*) FROM membership_application") == before
    assert await registry_db.fetchval("SELECT count(*) FROM hospital") == hospitals


async def test_nul_in_a_clinical_write_is_refused(api: Api) -> None:
    count = "{ referrals(first: 1) { totalCount } }"
    before = (await api.run(count, role="ALLIANCE_ADMIN"))["data"]["referrals"]["totalCount"]
    document = """mutation($input: CreateReferralInput!) { createReferral(input: $input) {
        referral { id } } }"""
    referral = {
        "direction": "UP",
        "toHospital": "LYZG",
        "patient": {"residentId": "11010519491231002X", "sex": "FEMALE", "age": 76},
        "diagnosis": {"code": "S72.001", "name": "股骨颈骨折"},
        "reason": "手术\x00",
    }
    body = json.dumps({"query": document, "variables": {"input": referral}})
    error = _refused(await _send(api, body, role="CLINICIAN", member="LHZY"), 400, "BAD_REQUEST")
    assert error["extensions"]["parameter"] == "variables.input.reason"
    after = (await api.run(count, role="ALLIANCE_ADMIN"))["data"]["referrals"]["totalCount"]
    assert after == before


# -- Server-Sent Events and WebSocket -----------------------------------------------------------


async def test_sse_refuses_bad_strings_before_streaming(api: Api) -> None:
    body = json.dumps({"query": NAME_QUERY, "variables": {"name": "\ud800"}})
    response = await _send(api, body, accept="text/event-stream")
    assert _refused(response, 400, "BAD_REQUEST")["extensions"]["parameter"] == "variables.name"
    body = json.dumps({"query": "query A { alliance { name } } query B { alliance { name } }"})
    response = await _send(api, body, accept="text/event-stream")
    assert "operationName" in _refused(response, 400, "BAD_REQUEST")["message"]


async def _ws_init(ws: Any, demo_env: Demo) -> None:
    await ws.send_json(
        {"type": "connection_init", "payload": {"authorization": f"Bearer {demo_env.token('OPS')}"}}
    )
    assert (await ws.receive_json())["type"] == "connection_ack"


async def _ws_receive(ws: Any) -> dict[str, Any]:
    text = await ws.receive_text()
    text.encode("utf-8")  # strict
    return json.loads(text)


@pytest.mark.parametrize(
    ("payload", "what"),
    [
        ({"query": NAME_QUERY, "variables": {"name": "\x00"}}, "U+0000"),
        ({"query": NAME_QUERY, "variables": {"name": "\ud800"}}, "surrogate"),
        ({"query": QUERY, "operationName": "\udc00"}, "surrogate"),
        ({"query": 'query { node(id: "\\u0000") { id } }'}, "U+0000"),
        ({"query": "query A { alliance { name } } query B { alliance { name } }"}, "operationName"),
        ({"query": QUERY, "operationName": "Missing"}, "Missing"),
    ],
)
async def test_websocket_subscribe_with_bad_input_gets_an_error(
    api: Api, demo_env: Demo, payload: dict[str, Any], what: str
) -> None:
    ws: AsyncWebSocketSession
    async with aconnect_ws("/graphql", api.http, subprotocols=PROTOCOL) as ws:
        await _ws_init(ws, demo_env)
        await ws.send_text(
            json.dumps({"id": "1", "type": "subscribe", "payload": payload}, ensure_ascii=True)
        )
        message = await _ws_receive(ws)
        assert message["type"] == "error" and message["id"] == "1", message
        (error,) = message["payload"]
        assert error["extensions"]["code"] == "BAD_REQUEST" and what in error["message"], error
        # The connection stays usable.
        await ws.send_json({"id": "2", "type": "subscribe", "payload": {"query": QUERY}})
        assert (await _ws_receive(ws))["type"] == "next"


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "1", "type": "subscribe", "payload": ' + _with("variables", _nested(100_000)) + "}",
        '{"id": "1", "type": "subscribe", "payload": ' + _with("variables", _nested(40)) + "}",
        _nested(100_000),
        "[1]",
        '{"id": ["1"], "type": "subscribe", "payload": {"query": "{ alliance { name } }"}}',
        '{"id": "1", "type": "subscribe", "payload": "{ alliance { name } }"}',
        '{"id": "1", "type": "subscribe", "payload": {"query": 5}}',
    ],
)
async def test_websocket_messages_that_cannot_be_read_close_with_4400(
    api: Api, demo_env: Demo, text: str
) -> None:
    ws: AsyncWebSocketSession
    async with aconnect_ws("/graphql", api.http, subprotocols=PROTOCOL) as ws:
        await _ws_init(ws, demo_env)
        await ws.send_text(text)
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_text()
    assert closed.value.code == 4400


# -- token claims -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"roles": 5}, "roles"),
        ({"roles": [5]}, "roles"),
        ({"roles": {"ALLIANCE_ADMIN": True}}, "roles"),
        ({"purpose_of_use": []}, "purpose_of_use"),
        ({"purpose_of_use": 5}, "purpose_of_use"),
        ({"hospital": []}, "hospital"),
        ({"hospital": 5}, "hospital"),
        ({"hospital": "LY\x00ZG"}, "hospital"),
        ({"sub": "x\ud800"}, "sub"),
        ({"sub": 5}, "sub"),
        ({"exp": "tomorrow"}, "exp"),
        ({"iat": []}, "iat"),
        ({"roles": ["CLINICIAN"], "purpose_of_use": "TREATMENT"}, "hospital"),
        ({"roles": ["MEMBER_ADMIN"], "hospital": ""}, "hospital"),
        ({"roles": ["PARTNER_SYSTEM", "OPS"]}, "hospital"),
    ],
)
async def test_claims_of_the_wrong_type_are_401(
    api: Api, demo_env: Demo, claims: dict[str, Any], named: str
) -> None:
    response = await api.post(QUERY, token=_mint(demo_env, **claims))
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = _strict_json(response)["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert f"`{named}`" in error["message"], error


def _segment(value: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        "not.a.jwt",
        "a.b",
        "x" * 500,
        "eyJhbGciOiJFUzI1NiJ9.e30.!!!",
        _segment(b"[" * 20_000) + ".e30.c2ln",
        _segment(b'{"alg": "none", "typ": "JWT"}') + "." + _segment(b'{"sub": "x"}') + ".",
        _segment(b'{"alg": "HS256"}') + "." + _segment(b"{}") + "." + _segment(b"sig"),
        _segment(b'{"alg": "ES256", "kid": ["x"]}') + "." + _segment(b"\xff\xfe") + ".c2ln",
    ],
)
async def test_malformed_tokens_are_401_in_the_gateways_words(api: Api, token: str) -> None:
    response = await api.post(QUERY, token=token)
    assert response.status_code == 401, response.text
    message = _strict_json(response)["errors"][0]["message"]
    for internal in (
        "segments",
        "padding",
        "Invalid header",
        "Invalid payload",
        "Expecting",
        "utf-8",
        "codec",
        "Signature verification failed",
        "algorithm not",
    ):
        assert internal not in message, message


# -- which operation ----------------------------------------------------------------------------

TWO = "query A { alliance { name } } query B { alliance { specialty } }"


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_several_operations_need_an_operation_name(api: Api, accept: str) -> None:
    error = _refused(
        await _send(api, json.dumps({"query": TWO}), accept=accept), 400, "BAD_REQUEST"
    )
    assert "operationName" in error["message"] and "`A`" in error["message"], error
    ok = await _send(api, json.dumps({"query": TWO, "operationName": "B"}), accept=accept)
    assert ok.status_code == 200, ok.text
    assert list(_strict_json(ok)["data"]["alliance"]) == ["specialty"]


async def test_several_mutations_without_a_name_run_none(api: Api, registry_db: Any) -> None:
    before = await registry_db.fetchval("SELECT count(*) FROM membership_application")
    document = """mutation A { withdrawMember(hospital: "NOPE", reason: VOLUNTARY) { member { code } } }
                  mutation B { withdrawMember(hospital: "NOPE2", reason: VOLUNTARY) { member { code } } }"""
    _refused(await _send(api, json.dumps({"query": document})), 400, "BAD_REQUEST")
    assert await registry_db.fetchval("SELECT count(*) FROM membership_application") == before


async def test_an_operation_name_that_names_no_operation_is_400(api: Api) -> None:
    body = json.dumps({"query": TWO, "operationName": "C"})
    error = _refused(await _send(api, body), 400, "BAD_REQUEST")
    assert "`C`" in error["message"] and "`A`" in error["message"], error
    response = await api.http.get(
        "/graphql",
        params={"query": QUERY, "operationName": "Nope"},
        headers={"authorization": f"Bearer {api.demo.token('OPS')}", "accept": GRAPHQL_RESPONSE},
    )
    assert "`Nope`" in _refused(response, 400, "BAD_REQUEST")["message"]


# -- metric labels ------------------------------------------------------------------------------


async def test_metrics_stay_small_with_long_operation_names(api: Api) -> None:
    before = len((await api.http.get("/metrics")).content)
    for i in range(50):
        name = f"N{i:02d}" + "x" * 20_000
        body = json.dumps({"query": f"query {name} {{ alliance {{ name }} }}"})
        assert (await _send(api, body, role="OPS")).status_code == 200
    exposition = (await api.http.get("/metrics")).content
    assert len(exposition) - before < 500_000, len(exposition) - before
    assert b"x" * 100 not in exposition


# -- the pieces, directly -----------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from(
    ["sub", "roles", "hospital", "purpose_of_use", "exp", "iat", "nbf", "aud", "iss", "jti"]
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    claims=st.dictionaries(
        CLAIM_NAMES,
        JSON_VALUES | st.sampled_from(["CLINICIAN", ["OPS"], "TREATMENT", "LYZG"]),
        max_size=4,
    )
)
def test_any_claims_give_a_principal_or_a_refusal(
    demo_key: tuple[str, Path], claims: dict[str, Any]
) -> None:
    private, public = demo_key
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 600, **claims}
    # Signed as a JWS: jwt.encode itself refuses some claims of the wrong type.
    token = jwt.PyJWS().encode(json.dumps(body).encode(), private, algorithm="ES256")
    verifier = TokenVerifier(AuthSettings(issuer=ISSUER, audience=AUDIENCE, public_key_file=public))
    try:
        principal = asyncio.run(verifier.verify(token))
    except (AuthenticationError, NoGatewayRoleError) as e:
        assert "PyJWT" not in str(e) and len(str(e)) < 300
        return
    assert isinstance(principal.subject, str) and principal.roles
    assert principal.hospital_code is None or isinstance(principal.hospital_code, str)
    if principal.roles & {Role.CLINICIAN, Role.MEMBER_ADMIN, Role.PARTNER_SYSTEM}:
        assert principal.hospital_code


@pytest.fixture(scope="module")
def demo_key(demo_env: Demo) -> tuple[str, Path]:
    return (demo_env.root / "signing-key.pem").read_text(
        "ascii"
    ), demo_env.root / "signing-key.pub.pem"


def test_a_treatment_read_without_a_hospital_is_forbidden() -> None:
    clinician = Principal("x", None, frozenset({Role.CLINICIAN}), Purpose.TREATMENT)
    with pytest.raises(GatewayError) as refused:
        require_treatment_purpose(clinician, "Reading test results")
    assert refused.value.code == "FORBIDDEN"


@pytest.mark.parametrize(
    "content",
    [
        {"errors": [{"message": "No operation named `\ud800x`."}]},
        {"data": {"a\udfff": ["\ud83d", "ok"]}},
        {"data": {"x": float("nan"), "y": [float("inf")]}},
    ],
)
def test_answers_always_render_as_utf8_json(content: dict[str, Any]) -> None:
    for text in (render_json(content).decode("utf-8"), _frame("next", content).split("data: ")[1]):
        parsed = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
        assert parsed.keys() == content.keys()
    assert "\ufffd" in render_json({"m": "\ud800"}).decode("utf-8")


def test_metric_labels_are_bounded_in_length() -> None:
    long_a, long_b = "A" * 20_000, "A" * 19_999 + "B"
    assert len(metrics._label(long_a)) <= metrics.MAX_LABEL_CHARS + 9
    assert metrics._label(long_a) != metrics._label(long_b)
    assert metrics._label("Short") == "Short"


def test_json_checks_are_iterative_and_name_the_place() -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RequestRefused, match="nested too deeply"):
        check_json({"variables": deep}, "body")
    with pytest.raises(RequestRefused) as refused:
        check_json({"variables": {"k" * 500: [0, {"v": "\x00"}]}}, "body")
    assert refused.value.parameter == "variables." + "k" * 63 + "…[1].v"


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ('{ auditTrail(since: "0001-01-01T00:00:00+08:00") { edges { node { id } } } }', None),
        ('{ auditTrail(since: "9999-12-31T23:59:59-12:00") { edges { node { id } } } }', None),
        (
            "query($f: ReferralFilter) { referrals(first: 1, filter: $f) { edges { node { id } } } }",
            {"f": {"since": "0001-01-01T00:00:00"}},
        ),
        (
            "query($f: ConsultationFilter) { consultations(first: 1, filter: $f) { totalCount } }",
            {"f": {"until": "9999-12-31T23:59:59-12:00"}},
        ),
    ],
)
async def test_a_time_no_source_can_hold_is_refused_before_any_member_is_asked(
    api: Api, document: str, variables: dict[str, Any] | None
) -> None:
    body = await api.run(document, variables, role="ALLIANCE_ADMIN")
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes and set(codes) <= {"GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"}, body
    assert "1900" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    "position",
    [["x"], ["2026-01-01T00:00:00+00:00", 10**30], ["not a time", 1], [[], 1], [1, 2, 3]],
)
async def test_a_tampered_audit_cursor_is_bad_input(api: Api, position: list[Any]) -> None:
    import base64

    after = base64.urlsafe_b64encode(json.dumps(["audit", position]).encode()).decode()
    body = await api.run(
        "query($a: String) { auditTrail(after: $a) { edges { node { id } } } }",
        {"a": after},
        role="ALLIANCE_ADMIN",
    )
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"], body
