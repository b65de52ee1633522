"""GraphQL over HTTP: authentication, media types, status codes, methods, limits."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.demo import tokens
from tests.conftest import Api, Demo, error_codes

QUERY = "{ alliance { name } }"


async def test_no_token_is_401(api: Api) -> None:
    response = await api.post(QUERY, token=None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


def _foreign_token() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    now = int(time.time())
    return jwt.encode(
        {
            "iss": "alliance-gateway-demo",
            "aud": "alliance-gateway",
            "sub": "x",
            "iat": now,
            "exp": now + 60,
            "roles": ["ALLIANCE_ADMIN"],
        },
        pem,
        algorithm="ES256",
    )


@pytest.mark.parametrize(
    ("token", "why"),
    [
        ("not.a.jwt", "malformed"),
        ("foreign", "signed by another key"),
        ("expired", "expired"),
        ("wrong-audience", "another audience"),
    ],
)
async def test_invalid_tokens_are_401(api: Api, demo_env: Demo, token: str, why: str) -> None:
    key = demo_env.root / tokens.PRIVATE_KEY_FILE
    minted = {
        "foreign": _foreign_token,
        "expired": lambda: tokens.mint(
            key,
            issuer="alliance-gateway-demo",
            audience="alliance-gateway",
            subject="x",
            roles=["OPS"],
            ttl_seconds=-120,
        ),
        "wrong-audience": lambda: tokens.mint(
            key, issuer="alliance-gateway-demo", audience="someone-else", subject="x", roles=["OPS"]
        ),
    }.get(token, lambda: token)()
    response = await api.post(QUERY, token=minted)
    assert response.status_code == 401, why
    assert error_codes(response.json()) == ["UNAUTHENTICATED"]


async def test_a_token_without_gateway_roles_is_403(api: Api, demo_env: Demo) -> None:
    minted = tokens.mint(
        demo_env.root / tokens.PRIVATE_KEY_FILE,
        issuer="alliance-gateway-demo",
        audience="alliance-gateway",
        subject="x",
        roles=["SOMETHING_ELSE"],
    )
    response = await api.post(QUERY, token=minted)
    assert response.status_code == 403
    assert error_codes(response.json()) == ["FORBIDDEN"]


async def test_media_types_and_status_codes(api: Api, demo_env: Demo) -> None:
    token = demo_env.token("OPS")
    ok = await api.post(QUERY, token=token)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("application/graphql-response+json")
    assert ok.json()["data"]["alliance"]["name"].endswith("专科联盟")

    legacy = await api.post(QUERY, token=token, accept="application/json")
    assert legacy.headers["content-type"].startswith("application/json")

    invalid = "{ alliance { nosuchfield } }"
    response = await api.post(invalid, token=token)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "data" not in response.json()
    response = await api.post(invalid, token=token, accept="application/json")
    assert response.status_code == 200, "legacy clients get 200 with errors"

    response = await api.post("{ alliance { ", token=token)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["GRAPHQL_PARSE_FAILED"]

    response = await api.post(
        "query($n: Int!) { alliance { members(first: $n) { totalCount } } }",
        {"n": "many"},
        token=token,
    )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_USER_INPUT"]

    response = await api.post(QUERY, token=token, accept="text/plain")
    assert response.status_code == 406


async def test_field_errors_keep_the_rest_of_the_data(api: Api, demo_env: Demo) -> None:
    response = await api.post(
        "{ alliance { name } membershipApplications { totalCount } }",
        token=demo_env.token("CLINICIAN", "LHZX"),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"]["alliance"]["name"]
    assert body["data"]["membershipApplications"] is None
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["membershipApplications"]


async def test_get_serves_queries_and_refuses_mutations(api: Api, demo_env: Demo) -> None:
    headers = {
        "authorization": f"Bearer {demo_env.token('OPS')}",
        "accept": "application/graphql-response+json",
    }
    response = await api.http.get("/graphql", params={"query": QUERY}, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["alliance"]["name"]

    mutation = (
        'mutation { withdrawMember(hospital: "LHZY", reason: VOLUNTARY) { member { code } } }'
    )
    response = await api.http.get("/graphql", params={"query": mutation}, headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_malformed_requests(api: Api, demo_env: Demo) -> None:
    headers = {
        "authorization": f"Bearer {demo_env.token('OPS')}",
        "accept": "application/graphql-response+json",
    }
    response = await api.http.post(
        "/graphql", content=b"{nope", headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    response = await api.http.post(
        "/graphql", content=b"query=x", headers={**headers, "content-type": "text/plain"}
    )
    assert response.status_code == 415
    response = await api.http.post("/graphql", json=[{"query": QUERY}], headers=headers)
    assert response.status_code == 400
    response = await api.http.post("/graphql", json={"variables": {}}, headers=headers)
    assert response.status_code == 400
    response = await api.http.post(
        "/graphql", json={"query": QUERY, "variables": "[1]"}, headers=headers
    )
    assert response.status_code == 400
    huge = {"query": QUERY, "variables": {"pad": "x" * (2 << 20)}}
    response = await api.http.post("/graphql", json=huge, headers=headers)
    assert response.status_code == 413
    response = await api.http.put("/graphql", json={"query": QUERY}, headers=headers)
    assert response.status_code == 405
    assert error_codes(response.json()) == ["METHOD_NOT_ALLOWED"]


async def test_graphiql_and_health_need_no_token(api: Api) -> None:
    page = await api.http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert (await api.http.get("/healthz")).json() == {"status": "alive"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["registry"] == "reachable"


async def test_readyz_reports_an_unreachable_registry(demo_env: Demo) -> None:
    from gateway.app import create_app
    from gateway.settings import load_settings

    settings = load_settings(demo_env.root / "alliance.toml")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/readyz")).status_code == 200
    # After shutdown the pool is closed: the registry is no longer reachable from this app.
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
