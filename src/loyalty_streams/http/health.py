"""The worker's health: `GET /health`, 200 when it is ok, 503 otherwise, with its report."""

from faust.web import Request, Response

from loyalty_streams.http.api_view import WorkerView


class Health(WorkerView):
    async def get(self, request: Request) -> Response:
        report = self.worker.health()
        return self.json(report, status=200 if report["status"] == "ok" else 503)


ROUTES: dict[str, type[WorkerView]] = {"/health": Health}
