"""Tools for development, the demo, the tests and the benchmarks; no production process uses them.

- `broker`: the embedded Tansu broker; `generator`: a synthetic stream of player events;
- `demo`: `loyalty-streams demo`, the whole product on a laptop, checked against a replay;
- `process`: a `loyalty-streams <command>` child process (a worker, a side service);
- `replay`: the rules folded over a topic outside any worker, to compare workers against.
"""
