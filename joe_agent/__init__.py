"""joe-agent: a local-first terminal coding agent that learns from its own runs."""

__version__ = "0.1.0"
