"""The worker's Prometheus metrics: `GET /metrics`, its registry in the text format. The metrics
themselves are defined in `runtime.metrics`."""

from faust.web import Request, Response
from prometheus_client import generate_latest

from loyalty_streams.http.api_view import WorkerView


class MetricsView(WorkerView):
    async def get(self, request: Request) -> Response:
        body = generate_latest(self.worker.metrics.registry)
        return self.bytes(body, content_type="text/plain; version=0.0.4", status=200)


ROUTES: dict[str, type[WorkerView]] = {"/metrics": MetricsView}
