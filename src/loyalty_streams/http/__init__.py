"""The worker's HTTP API: lookups, commands, administration, and its OpenAPI document.

- `views`: a player's lookup, history and cashback log; `writes`: commands and administration;
- `base`: what every view shares (token, bodies, JSON errors); `bodies`: the request bodies;
- `auth`: bearer tokens and roles; `errors`: JSON for every error; `openapi`: `/openapi.json`;
- `command_sender`: publishes validated commands to `loyalty.commands`.
"""
