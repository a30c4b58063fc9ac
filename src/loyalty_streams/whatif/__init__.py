"""What-if: a brand's event history replayed through a proposed programme beside the versions
that were in effect, with the domain's own rules, and a report of what would have differed
(players per level, level moves, points and their liability, cashback, tier-up rewards).

`run.what_if` replays any history (`replay.Source`); `report` adds the runs' outputs up;
`render` writes the report as a terminal table, CSV, JSON and an HTML page of plotly charts.
Nothing here writes to a topic or to a worker's state.
"""
