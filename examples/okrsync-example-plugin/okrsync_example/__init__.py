"""An example okrsync connector plug-in (see docs/writing-a-connector.md)."""
