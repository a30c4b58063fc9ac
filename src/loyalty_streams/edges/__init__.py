"""What the outside touches: the CLI, the embedded broker, topic administration, the generator."""
