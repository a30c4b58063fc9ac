"""Which worker owns which partition of the player table, so a lookup can reach the right one.

Each worker announces its partitions on the one-partition topic `loyalty.workers` whenever the
consumer group gives it new ones; every worker reads that topic, so the latest announcement for a
partition (in log order, immune to clock skew) names its owner. A worker that crashed is replaced
as soon as the group hands its partitions to another, which then announces them.
"""

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict


class Claim(BaseModel):
    """One worker's announcement: the partitions it owns now, and where its views answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str
    worker: str
    url: AnyHttpUrl
    partitions: tuple[int, ...]
    at: AwareDatetime


class Owners:
    """The owner of every announced partition, kept current by the workers' claims."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._owners: dict[int, Claim] = {}

    def apply(self, claim: Claim) -> None:
        """Apply the next claim in log order: it wins its partitions and gives up the rest.

        Claims of other apps (another consumer group on the same cluster) are not ours.
        """
        if claim.app_id != self.app_id:
            return
        owners = {p: c for p, c in self._owners.items() if c.worker != claim.worker}
        for partition in claim.partitions:
            owners[partition] = claim
        self._owners = owners  # replaced whole: readers in other threads see one state

    def owner_of(self, partition: int) -> Claim | None:
        return self._owners.get(partition)
