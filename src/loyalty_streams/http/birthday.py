"""The birthday gift: a player's claim of their level's gift, once a year (a
`ClaimBirthdayGift` command)."""

from loyalty_streams.domain.commands import ClaimBirthdayGift
from loyalty_streams.http.api_view import ApiView
from loyalty_streams.http.commands import ClaimView


class BirthdayView(ClaimView):
    claim = ClaimBirthdayGift


ROUTES: dict[str, type[ApiView]] = {"/loyalty/birthday/claim": BirthdayView}
