"""Where state lives. JOE_HOME (default ~/.joe-agent) relocates all of it."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


def joe_home() -> Path:
    """The state folder: $JOE_HOME, else ~/.joe-agent. Not created here."""
    env = os.environ.get("JOE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".joe-agent"


def project_key(root: Path) -> str:
    """A stable, readable folder name for a project: its basename plus a short hash of its
    resolved path, so two projects called `app` never share transcripts or checkpoints."""
    resolved = str(Path(root).resolve())
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(resolved).name or "root").strip("-") or "root"
    digest = hashlib.sha1(resolved.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{base}-{digest}"
