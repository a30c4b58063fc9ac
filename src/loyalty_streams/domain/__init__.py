"""The loyalty engine: contracts, programmes, player state and the rules that fold events into it.

Pure Python: no Kafka, no Faust, no I/O and no wall clock. Every rule about money, points and
levels lives here and nowhere else; nothing here imports from the rest of the package.

- contracts: `events` (inbound play), `commands` (inbound requests), `outputs` (what the engine
  tells the platform), `moments` and `money` (time and amounts as every contract takes them),
  `validation` (errors in words, JSON with unique keys);
- programmes: `programme` (a brand's levels, points rules and policies), `catalogue` (every
  version of every brand's programme), `multipliers` (the level's multipliers);
- the player: `player` (the one record a player has), `standing` (what it means, for lookups);
- rules: `event_rules` (an event folded into the record, the level rules), `command_rules` (a
  command executed on it), `time_rules` (what time alone does: timers), `followups` (what the
  rest of the platform hears of a decision).
"""
