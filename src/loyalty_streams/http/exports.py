"""Finance exports: `GET /loyalty/exports/{kind}`, a brand's outputs of one kind (accruals,
reversals, redemptions, cashback, coin rewards: `reports.finance.ExportKind`) for a date range as
CSV, streamed. The CSV itself is built by `reports.finance`."""

import asyncio
from collections.abc import Iterator
from http import HTTPStatus
from typing import cast

from aiohttp import web
from faust.web import Request

from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.auth import Permission
from loyalty_streams.http.errors import refuse
from loyalty_streams.reports.finance import ExportKind, brand_zone, export_csv, parse_bound


class ExportView(ApiView):
    """A finance CSV for a brand and date range, streamed: `?brand_id=&from=&to=`."""

    async def get(self, request: Request, kind: str) -> web.StreamResponse:
        self.authorize(request, Permission.EXPORT)
        query = request.query
        brand_id = query.get("brand_id", "")
        self.authorize(request, Permission.EXPORT, brand_id)
        try:
            export = ExportKind(kind)
        except ValueError as error:
            kinds = ", ".join(k.value for k in ExportKind)
            raise refuse(HTTPStatus.NOT_FOUND, f"no export {kind!r}; exports: {kinds}") from error
        zone = brand_zone(self.worker.tables.catalogue, brand_id, self.worker.clock())
        if zone is None:
            raise refuse(HTTPStatus.NOT_FOUND, f"no programme of brand {brand_id!r}")
        try:
            since = parse_bound(query.get("from", ""), zone)
            until = parse_bound(query.get("to", ""), zone)
            chunks = export_csv(self.worker.settings, export, brand_id, since, until)
        except ValueError as error:
            raise refuse(HTTPStatus.BAD_REQUEST, f"from/to: {error}") from error
        name = f"{brand_id}-{export.value}-{since.date()}-{until.date()}.csv"
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="{name}"',
            }
        )
        await response.prepare(cast(web.BaseRequest, request))  # Faust serves with aiohttp
        await _stream(response, chunks)
        await response.write_eof()
        return response


async def _stream(response: web.StreamResponse, chunks: Iterator[str]) -> None:
    """Each chunk read from the topic in a thread, then written: memory stays flat."""
    try:
        while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
            await response.write(chunk.encode())
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


ROUTES: dict[str, type[ApiView]] = {"/loyalty/exports/{kind}": ExportView}
