"""Operators' own tables, read into the product's data. Pure: text in, validated models out.

- `vip_levels`: an export of a sweepstakes brand's `vip_levels` table (CSV or JSON) into a
  `Programme`, with notes on what was left out.
"""
