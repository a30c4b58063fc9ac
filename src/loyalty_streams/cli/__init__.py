"""The `loyalty-streams` command.

- `main`: the command, its subcommands and their arguments, each handed to the module that does
  the work;
- `worker`: `loyalty-streams worker`, the checks before a worker starts and the run.
"""
