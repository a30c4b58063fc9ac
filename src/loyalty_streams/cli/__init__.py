"""The `loyalty-streams` command.

- `main`: its subcommands and their arguments;
- `worker`: `loyalty-streams worker`, the checks before a worker starts and the run.
"""
