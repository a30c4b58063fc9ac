"""The stream layer: Faust app, topics, tables and agents. Thin: decode, fold with the domain, emit."""
