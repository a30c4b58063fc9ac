"""A command the rules refuse: well formed, but the player's record does not allow it."""


class Refused(Exception):
    """Raised by a command's rule before it changes anything; `code` names the rule (e.g.
    `insufficient_points`), `reason` says why in a sentence. `command_rules.execute` turns it
    into a `CommandRejected`."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
