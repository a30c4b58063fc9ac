"""The stream layer: Faust app, topics, tables, agents. Thin: decode, fold with the domain, emit."""
