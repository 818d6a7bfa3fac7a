"""A small error hierarchy. Every JoeError carries one line a person can act on; the CLI and
the REPL print `str(err)` and never a traceback for these."""
from __future__ import annotations


class JoeError(Exception):
    """Base class: the message is user-facing, one line, and says what to do."""

    exit_code = 1


class ConfigError(JoeError):
    """Bad config file, unknown key, bad value, bad flag."""

    exit_code = 2


class ModelError(JoeError):
    """Anything that went wrong talking to the model server."""


class ModelUnreachable(ModelError):
    """No server listening at the host."""


class ModelNotFound(ModelError):
    """The model is not pulled / not served."""


class ToolsUnsupported(ModelError):
    """The server said this model does not support tools (fall back to text tool calls)."""


class StreamError(ModelError):
    """The stream broke after it started (error line, dropped connection, bad chunk).
    The agent keeps what arrived before and marks the reply as partial."""


class StoreError(JoeError):
    """A file under JOE_HOME could not be read or written safely."""
