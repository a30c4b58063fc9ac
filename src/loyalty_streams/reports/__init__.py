"""Reports read from the output topics.

- `finance`: CSV exports of one brand's accruals, redemptions or cashback over a time range.
"""
