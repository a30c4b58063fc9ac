"""The worker's HTTP API: one module per resource, each owning its routes (`ROUTES`).

Resources, by route:
- `players`: `/loyalty/{brand_id}/{player_id}` (the lookup), its `/history` and `/cashback`,
  and the platform spec's `/loyalty/{player_id}`;
- `explain`: `/loyalty/{brand_id}/{player_id}/explain` (why the balance and the level);
- `points`: `/loyalty/points/add`; `status`: `/loyalty/status/update`;
- `redemptions`: `/loyalty/redemptions`, `.../{redemption_id}/confirm` and `/cancel`;
- `birthday`: `/loyalty/birthday/claim`; `coin_rewards`: `/loyalty/daily-reward/claim`,
  `/loyalty/monthly-bonus/claim`;
- `recheck`: `/loyalty/{brand_id}/{player_id}/recheck`, `/loyalty/admin/brands/{brand_id}/recheck`;
- `programmes`: `/loyalty/programmes/{brand_id}`, its `/versions` and `/promotions`;
- `audit`: `/loyalty/audit`; `exports`: `/loyalty/exports/{kind}` (finance CSV);
- `whatif`: `/loyalty/what-if/{brand_id}` (a what-if started as a job), and the job,
  `/loyalty/what-if/jobs/{job_id}`, with its `/report.html` and `/report.csv`;
- `health`: `/health`; `metrics`: `/metrics`; `openapi`: `/openapi.json` and its document;
- `backoffice`: `/backoffice/`, the back office's web page (static files, no token; the page
  calls the API with the user's token), and `/backoffice`, a redirect to it.

What they share:
- `routes`: installs every resource's routes on the worker's app, in the order they must match;
- `api_view`: the base views (the worker, the caller's token checked, errors as JSON);
- `commands`: a write as a command, answered with its outcome; `command_sender`: publishes
  commands to `loyalty.commands` (also for the CLI and the demo);
- `forwarding`: a read about a player forwarded to the worker owning their partition;
- `auth`: bearer tokens, roles and permissions; `bodies`: the request bodies, read and validated;
- `parameters`: path ids, query parameters, the brand header; `errors`: JSON for every error.
"""
