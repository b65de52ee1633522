"""Protection against abusive documents, over HTTP against the real app: limits on depth,
aliases, tokens and estimated cost (each its own code and 400, never a 500), the body size,
persisted documents, introspection, and per-principal rate limiting."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from graphql import get_introspection_query

from gateway.app import create_app
from gateway.persisted import ManifestError, load_manifest
from gateway.rate_limit import RateLimiter
from gateway.runtime.build import build_schema
from gateway.runtime.limits import QueryLimits
from gateway.settings import load_settings
from tests.conftest import Api, Demo, error_codes, serving

GRAPHQL_RESPONSE = "application/graphql-response+json"
SMALL = "{ alliance { name } }"
PERSISTED = "query AllianceName { alliance { name standing } }"
LISTED = "{ trainingEvents(first: 3) { totalCount } }"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def nested(levels: int) -> str:
    # `council` inside `council` is no field, but depth is counted (and reported) all the same.
    return "{ alliance " + "{ council " * levels + "{ role }" + " }" * levels + " }"


def chain(depth: int) -> str:
    """A valid document `depth` levels deep: alliance > members > edges > node, then member >
    hospital > membership > hospital > … down to a `code`."""
    links = depth - 5
    inner = "code"
    for i in range(links):
        # The outermost link (the last made) is a member's hospital.
        inner = f"{'membership' if (links - 1 - i) % 2 else 'hospital'} {{ {inner} }}"
    return "{ alliance { members(first: 1) { edges { node { " + inner + " } } } } }"


def headers(token: str, accept: str = GRAPHQL_RESPONSE) -> dict[str, str]:
    return {"authorization": f"Bearer {token}", "accept": accept}


async def refused(api: Api, token: str, query: str, code: str, **variables: Any) -> dict:
    response = await api.post(query, variables, token=token)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    body = response.json()
    assert code in error_codes(body), body
    assert "data" not in body
    return next(e for e in body["errors"] if e["extensions"]["code"] == code)


# --- limits on the demo app (default limits) -------------------------------------------------------


async def test_too_deep(api: Api, demo_env: Demo) -> None:
    token = demo_env.token("OPS")
    error = await refused(api, token, nested(14), "QUERY_TOO_DEEP")
    assert error["extensions"]["maxDepth"] == 12
    assert error["extensions"]["depth"] == 16
    assert "at most 12" in error["message"]
    # Too deep for the parser itself: refused with the same code, not a syntax error or a 500.
    await refused(api, token, nested(500), "QUERY_TOO_DEEP")
    # Twelve levels pass; thirteen do not, and that is the only error.
    response = await api.post(chain(12), token=token)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    response = await api.post(chain(13), token=token)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["QUERY_TOO_DEEP"]


async def test_depth_counts_fragments(api: Api, demo_env: Demo) -> None:
    # The operation looks 4 deep; the fragments it spreads take it to 13.
    query = (
        "{ alliance { members(first: 1) { edges { node { ...M } } } } } "
        "fragment M on Member { hospital { ...H } } "
        "fragment H on Hospital { membership { hospital { membership { hospital { "
        "membership { hospital { membership { code } } } } } } } }"
    )
    error = await refused(api, demo_env.token("OPS"), query, "QUERY_TOO_DEEP")
    assert error["extensions"]["depth"] == 13


async def test_too_many_aliases(api: Api, demo_env: Demo) -> None:
    token = demo_env.token("OPS")
    many = "{ " + " ".join(f"a{i}: alliance {{ name }}" for i in range(31)) + " }"
    error = await refused(api, token, many, "TOO_MANY_ALIASES")
    assert error["extensions"] == {"code": "TOO_MANY_ALIASES", "aliases": 31, "maxAliases": 30}
    # Aliases inside a fragment count once per spread.
    fragment = "fragment N on Alliance { " + " ".join(f"n{i}: name" for i in range(8)) + " }"
    spread = "{ alliance { ...N } b: alliance { ...N } c: alliance { ...N ...N } } " + fragment
    error = await refused(api, token, spread, "TOO_MANY_ALIASES")
    assert error["extensions"]["aliases"] == 2 + 4 * 8
    thirty = "{ " + " ".join(f"a{i}: alliance {{ name }}" for i in range(30)) + " }"
    assert (await api.post(thirty, token=token)).status_code == 200


async def test_too_many_tokens(api: Api, demo_env: Demo) -> None:
    token = demo_env.token("OPS")
    error = await refused(api, token, "{ " + "alliance { name } " * 1100 + "}", "TOO_MANY_TOKENS")
    assert error["extensions"] == {"code": "TOO_MANY_TOKENS", "maxTokens": 4000}
    # Comments are tokens too: padding with them does not get a document past the limit.
    padded = "# pad\n" * 5000 + SMALL
    await refused(api, token, padded, "TOO_MANY_TOKENS")
    # A syntax error is still a syntax error.
    await refused(api, token, "{ alliance { ", "GRAPHQL_PARSE_FAILED")


async def test_too_costly(api: Api, demo_env: Demo) -> None:
    token = demo_env.token("SECRETARIAT")
    page = "referrals(first: {n}) {{ totalCount edges {{ node {{ id status direction createdAt greenChannel }} }} }}"
    literal = "{ " + " ".join(f"r{i}: " + page.format(n=10) for i in range(8)) + " }"
    response = await api.post(literal, token=token)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()

    # The same document with `first` as a variable is estimated at the page cap (100): whatever
    # the variables, the cached validation must hold, so 8 x (2 + 100 x 7) > 5000.
    variable = (
        "query($n: Int) { " + " ".join(f"r{i}: " + page.format(n="$n") for i in range(8)) + " }"
    )
    error = await refused(api, token, variable, "QUERY_TOO_COSTLY", n=10)
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 8 * 702, "maxCost": 5000}
    assert "first" in error["message"]

    # Literal pages count as written: one page of 100 passes, eight do not.
    assert (await api.post("{ " + page.format(n=100) + " }", token=token)).status_code == 200
    huge = "{ " + " ".join(f"r{i}: " + page.format(n=100) for i in range(8)) + " }"
    error = await refused(api, token, huge, "QUERY_TOO_COSTLY")
    assert error["extensions"]["cost"] == 8 * 702


async def test_limits_under_legacy_json_are_200_with_the_code(api: Api, demo_env: Demo) -> None:
    # application/json clients get 200 for request errors (GraphQL-over-HTTP); the code is the same.
    response = await api.post(nested(14), token=demo_env.token("OPS"), accept="application/json")
    assert response.status_code == 200
    assert "QUERY_TOO_DEEP" in error_codes(response.json())


async def test_abusive_documents_never_get_a_500(api: Api, demo_env: Demo) -> None:
    token = demo_env.token("OPS")
    cyclic = "{ alliance { council { ...A } } } fragment A on CouncilSeat { ...B } fragment B on CouncilSeat { ...A }"
    spread = "fragment F on Alliance { " + " ".join(f"x{i}: name" for i in range(5)) + " }"
    # 2^k spreads of one fragment: counted, not walked (memoised per fragment).
    doubling = (
        "".join(f"fragment D{i} on Alliance {{ ...D{i + 1} ...D{i + 1} }} " for i in range(40))
        + "fragment D40 on Alliance { name }"
    )
    documents = [
        cyclic,
        "{ alliance { ...F ...F ...F ...F ...F ...F ...F } } " + spread,
        "{ alliance { ...D0 } } " + doubling,
        "{ " + "[" * 3000 + " }",
        "{ alliance(" + "a: 1, " * 2000 + ") { name } }",
        '{ hospital(code: "' + "x" * 500_000 + '") { name } }',
        "query { nosuch { a { b { c } } } }",
        "{ referrals(first: 100000) { edges { node { id } } } }",
        "{ referrals(first: -5) { edges { node { id } } } }",
        "fragment X on Nope { a } { alliance { ...X ...Missing } }",
    ]
    for document in documents:
        response = await api.post(document, token=token)
        assert response.status_code in (200, 400), (document[:80], response.text[:300])
        codes = error_codes(response.json())
        assert "INTERNAL_SERVER_ERROR" not in codes, (document[:80], codes)


def test_limit_rules_are_made_once_so_the_validation_cache_hits() -> None:
    from strawberry.extensions.validation_cache import _get_validate_cache

    schema = build_schema(introspection=True, limits=QueryLimits(max_cost=10))
    # Declared a Callable, it is an lru_cache wrapper.
    cache = cast("functools._lru_cache_wrapper[Any]", _get_validate_cache(256))
    document = "{ __typename }"
    schema.execute_sync(document)
    before = cache.cache_info().hits
    result = schema.execute_sync(document)
    assert cache.cache_info().hits == before + 1
    assert result.errors is None and result.data == {"__typename": "Query"}
    costly = schema.execute_sync("{ referrals(first: 5) { edges { node { id } } } }")
    assert [(e.extensions or {})["code"] for e in costly.errors or []] == ["QUERY_TOO_COSTLY"]


# --- a stricter gateway: introspection off, a manifest, persisted documents for partners --------


@pytest.fixture(scope="module")
async def strict(demo_env: Demo, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    manifest = tmp_path_factory.mktemp("persisted") / "manifest.json"
    manifest.write_text(json.dumps({sha256(d): d for d in (PERSISTED, LISTED)}))
    settings = load_settings(
        demo_env.root / "alliance.toml",
        introspection=False,
        graphiql=False,
        limits={"max_body_bytes": 4096},
        persisted_documents={"manifest": manifest, "required_for_roles": ["PARTNER_SYSTEM"]},
    )
    async with serving(create_app(settings)) as url:
        yield url


@pytest.fixture
async def strict_http(strict: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=strict, timeout=10) as client:
        yield client


def persisted(hash_: str, **body: Any) -> dict[str, Any]:
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": hash_}}, **body}


async def test_persisted_documents(strict_http: httpx.AsyncClient, demo_env: Demo) -> None:
    for role, member in (("CLINICIAN", "LHZX"), ("PARTNER_SYSTEM", None)):
        h = headers(demo_env.token(role, member))
        # By hash alone (POST), by documentId, and by GET with the extensions as JSON.
        response = await strict_http.post("/graphql", json=persisted(sha256(PERSISTED)), headers=h)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["alliance"]["name"].endswith("专科联盟")
        response = await strict_http.post(
            "/graphql", json={"documentId": f"sha256:{sha256(LISTED)}"}, headers=h
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["trainingEvents"]["totalCount"] >= 0
        response = await strict_http.get(
            "/graphql",
            params={"extensions": json.dumps(persisted(sha256(PERSISTED))["extensions"])},
            headers=h,
        )
        assert response.status_code == 200, response.text
        # With the document and its (upper-case) hash: the same.
        response = await strict_http.post(
            "/graphql", json=persisted(sha256(PERSISTED).upper(), query=PERSISTED), headers=h
        )
        assert response.status_code == 200, response.text


async def test_unknown_hash_and_mismatch(strict_http: httpx.AsyncClient, demo_env: Demo) -> None:
    h = headers(demo_env.token("CLINICIAN", "LHZX"))
    unknown = sha256("{ alliance { specialty } }")
    response = await strict_http.post("/graphql", json=persisted(unknown), headers=h)
    assert response.status_code == 400
    body = response.json()
    assert error_codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert "data" not in body and unknown in body["errors"][0]["message"]
    # APQ clients speak application/json and expect 200 with the code, then retry with the text.
    legacy = {**h, "accept": "application/json"}
    response = await strict_http.post("/graphql", json=persisted(unknown), headers=legacy)
    assert response.status_code == 200
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    response = await strict_http.post(
        "/graphql", json=persisted(unknown, query="{ alliance { specialty } }"), headers=legacy
    )
    assert response.status_code == 200 and response.json()["data"]["alliance"]["specialty"]

    # A document with another document's hash.
    response = await strict_http.post(
        "/graphql", json=persisted(sha256(PERSISTED), query=SMALL), headers=h
    )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["BAD_REQUEST"]
    for bad in (
        {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": sha256(SMALL)}}},
        {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "abc"}}},
        {"documentId": "md5:0123"},
        {"documentId": f"sha256:{sha256(SMALL)}", **persisted(sha256(PERSISTED))},
    ):
        response = await strict_http.post("/graphql", json=bad, headers=h)
        assert response.status_code == 400, bad
        assert error_codes(response.json()) == ["BAD_REQUEST"], bad


async def test_persisted_documents_required_for_partner_systems(
    strict_http: httpx.AsyncClient, demo_env: Demo
) -> None:
    partner = headers(demo_env.token("PARTNER_SYSTEM"))
    response = await strict_http.post("/graphql", json={"query": SMALL}, headers=partner)
    assert response.status_code == 403
    body = response.json()
    assert error_codes(body) == ["PERSISTED_QUERY_REQUIRED"]
    assert "PARTNER_SYSTEM" in body["errors"][0]["message"]
    # Its own hash does not make a document persisted.
    response = await strict_http.post(
        "/graphql", json=persisted(sha256(SMALL), query=SMALL), headers=partner
    )
    assert response.status_code == 403
    assert error_codes(response.json()) == ["PERSISTED_QUERY_REQUIRED"]
    response = await strict_http.post("/graphql", json=persisted(sha256(SMALL)), headers=partner)
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]

    # A clinician may still send free-form documents.
    clinician = headers(demo_env.token("CLINICIAN", "LHZX"))
    response = await strict_http.post("/graphql", json={"query": SMALL}, headers=clinician)
    assert response.status_code == 200
    assert response.json()["data"]["alliance"]["name"]


async def test_apq_without_a_manifest(api: Api, demo_env: Demo) -> None:
    h = headers(demo_env.token("OPS"))
    response = await api.http.post("/graphql", json=persisted(sha256(SMALL)), headers=h)
    assert response.status_code == 400
    assert error_codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]
    response = await api.http.post(
        "/graphql", json=persisted(sha256(SMALL), query=SMALL), headers=h
    )
    assert response.status_code == 200 and response.json()["data"]["alliance"]["name"]


def test_a_manifest_with_a_wrong_hash_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({sha256(SMALL): PERSISTED}))
    with pytest.raises(ManifestError, match="not the SHA-256"):
        load_manifest(manifest)
    manifest.write_text("[]")
    with pytest.raises(ManifestError, match="JSON object"):
        load_manifest(manifest)


async def test_introspection(api: Api, strict_http: httpx.AsyncClient, demo_env: Demo) -> None:
    token = demo_env.token("OPS")
    # On in the demo: GraphiQL's full introspection query passes every limit.
    response = await api.post(get_introspection_query(), token=token)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["__schema"]["queryType"]["name"] == "Query"

    response = await strict_http.post(
        "/graphql", json={"query": "{ __schema { queryType { name } } }"}, headers=headers(token)
    )
    assert response.status_code == 400
    assert error_codes(response.json()) == ["INTROSPECTION_DISABLED"]
    response = await strict_http.post(
        "/graphql", json={"query": '{ __type(name: "Query") { name } }'}, headers=headers(token)
    )
    assert error_codes(response.json()) == ["INTROSPECTION_DISABLED"]
    response = await strict_http.post(
        "/graphql", json={"query": "{ __typename alliance { __typename } }"}, headers=headers(token)
    )
    assert response.status_code == 200
    assert response.json()["data"]["__typename"] == "Query"


async def test_configured_body_size(strict_http: httpx.AsyncClient, demo_env: Demo) -> None:
    h = headers(demo_env.token("OPS"))
    response = await strict_http.post(
        "/graphql", json={"query": SMALL, "variables": {"pad": "x" * 5000}}, headers=h
    )
    assert response.status_code == 413
    assert error_codes(response.json()) == ["PAYLOAD_TOO_LARGE"]
    assert "4096" in response.json()["errors"][0]["message"]


# --- rate limiting -----------------------------------------------------------------------------


async def test_rate_limit_answers_429_and_recovers(demo_env: Demo) -> None:
    settings = load_settings(
        demo_env.root / "alliance.toml",
        rate_limit={"enabled": True, "requests_per_second": 2, "burst": 3},
    )
    ops, clinician = demo_env.token("OPS"), demo_env.token("CLINICIAN", "LHZX")
    async with (
        serving(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        post = lambda token: client.post("/graphql", json={"query": SMALL}, headers=headers(token))  # noqa: E731
        statuses = [(await post(ops)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        limited = await post(ops)
        assert limited.status_code == 429
        assert error_codes(limited.json()) == ["RATE_LIMITED"]
        retry_after = int(limited.headers["retry-after"])
        assert retry_after >= 1
        # Another principal has its own bucket.
        assert (await post(clinician)).status_code == 200
        # Unauthenticated requests are refused before they take anyone's token.
        response = await client.post("/graphql", json={"query": SMALL}, headers={})
        assert response.status_code == 401

        await asyncio.sleep(retry_after)
        assert (await post(ops)).status_code == 200


def test_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=0.5, burst=2, max_subjects=2, clock=lambda: now[0])
    assert limiter.take("a") is None and limiter.take("a") is None
    assert limiter.take("a") == 2  # one token takes 2 s at 0.5 a second
    now[0] = 1.0
    assert limiter.take("a") == 1  # half a token back: one more second
    now[0] = 2.0
    assert limiter.take("a") is None
    # Buckets are bounded: the least recently seen subject is forgotten (and starts full).
    limiter.take("b")
    limiter.take("c")
    assert "a" not in limiter._buckets and len(limiter._buckets) == 2
