"""GET /exports/{document}.xlsx: the workbooks, under the same bearer authentication as /graphql
and the same roles as the fields they come from. Refusals are JSON with a stable code, as on
/graphql: 401 without a valid token, 403 for a role that may not, 400 for a bad year or half, 404
for a document that does not exist (or a report the regulator may not see yet)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth import AuthenticationError, NoGatewayRoleError, TokenVerifier
from gateway.exports import assessment_book, review_form_book, work_report_book
from resolvers import audit, clock, registry
from resolvers.assessment.service import assessment_of
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, GatewayError, bad_input
from resolvers.principal import Principal
from resolvers.work_report import report
from resolvers.work_report.periods import FIRST_YEAR
from resolvers.work_report.review_form import review_form

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ContextFactory = Callable[..., RequestContext]
log = logging.getLogger("alliance_gateway.exports")

_STATUS = {
    ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_TRANSITION: 409,
}


def _number(text: str, argument: str) -> int:
    if not re.fullmatch(r"[0-9]{1,4}", text):
        raise bad_input(
            f"{argument} in the address must be a number such as 2025.", argument=argument
        )
    return int(text)


async def _work_report(ctx: RequestContext, found: dict[str, str]) -> bytes:
    year, half = _number(found["year"], "year"), _number(found["half"], "half")
    read = await report.get(ctx, year, half)
    if read is None:
        raise GatewayError(
            ErrorCode.NOT_FOUND,
            f"The work report for {year} H{half} has not been submitted yet.",
        )
    alliance = await registry.alliance(ctx)
    codes = [m.hospital for m in read.tally.members]
    records = await asyncio.gather(*(registry.hospital(ctx, c) for c in codes))
    sheet = work_report_book.WorkReportSheet(
        alliance_name=alliance.name,
        hospital_names={r.code: r.name for r in records if r is not None},
        report=read,
        today_late=read.filed.late(clock.today()),
    )
    return await asyncio.to_thread(work_report_book.build, sheet)


async def _review_form(ctx: RequestContext, found: dict[str, str]) -> bytes:
    form = await review_form(ctx, _number(found["year"], "year"))
    return await asyncio.to_thread(review_form_book.build, form)


async def _assessment(ctx: RequestContext, found: dict[str, str]) -> bytes:
    year = _number(found["year"], "year")
    years = (year, year - 1) if year - 1 >= FIRST_YEAR else (year,)
    # The year before too: its figures carry each indicator's trend a year further back.
    read = await asyncio.gather(*(assessment_of(ctx, y) for y in years))
    alliance = await registry.alliance(ctx)
    sheets = assessment_book.AssessmentSheets(
        alliance_name=alliance.name,
        assessment=read[0],
        year_before=read[1] if len(read) > 1 else None,
    )
    return await asyncio.to_thread(assessment_book.build, sheets)


Builder = Callable[[RequestContext, dict[str, str]], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class _Document:
    pattern: re.Pattern[str]
    build: Builder


DOCUMENTS = (
    _Document(re.compile(r"work-report-(?P<year>[^-]*)-H(?P<half>.*)\.xlsx"), _work_report),
    _Document(re.compile(r"review-form-(?P<year>.*)\.xlsx"), _review_form),
    _Document(re.compile(r"assessment-(?P<year>.*)\.xlsx"), _assessment),
)


def _refusal(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status, headers=headers or None)


class ExportEndpoint:
    def __init__(self, verifier: TokenVerifier, make_context: ContextFactory) -> None:
        self._verifier = verifier
        self._make_context = make_context

    async def __call__(self, request: Request) -> Response:
        try:
            principal = await self._verifier.verify_header(request.headers.get("authorization"))
        except AuthenticationError as e:
            return _refusal(
                401,
                ErrorCode.UNAUTHENTICATED,
                str(e),
                **{"WWW-Authenticate": 'Bearer realm="alliance-gateway"'},
            )
        except NoGatewayRoleError as e:
            return _refusal(403, ErrorCode.FORBIDDEN, str(e))
        name: str = request.path_params["document"]
        for document in DOCUMENTS:
            found = document.pattern.fullmatch(name)
            if found is not None:
                return await self._serve(principal, name, document.build, found.groupdict())
        return _refusal(
            404,
            ErrorCode.NOT_FOUND,
            "No such export: work-report-{year}-H{1|2}.xlsx, review-form-{year}.xlsx and "
            "assessment-{year}.xlsx are served.",
        )

    async def _serve(
        self, principal: Principal, name: str, build: Builder, found: dict[str, Any]
    ) -> Response:
        ctx = self._make_context(principal)
        ctx.next_operation()
        try:
            content = await build(ctx, found)
        except GatewayError as e:
            return _refusal(_STATUS.get(e.code, 500), e.code, e.message)
        except Exception:
            log.exception("unexpected failure building an export")
            return _refusal(
                500,
                ErrorCode.INTERNAL_SERVER_ERROR,
                "Internal error: the gateway could not build this document. Operations has "
                "the details.",
            )
        finally:
            if not ctx.operation_untouched:
                await audit.flush(ctx.audit_store, ctx.audit, ctx.principal, ctx.sources)
        return Response(
            content,
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )


def routes(verifier: TokenVerifier, make_context: ContextFactory) -> list[Route]:
    endpoint = ExportEndpoint(verifier, make_context)
    return [Route("/exports/{document}", endpoint.__call__, methods=["GET"])]
