"""Token counting that never touches the network and never hangs.

tiktoken downloads its encodings on first use; offline machines cannot. So we only hand
tiktoken an encoding whose file is already in its cache (and whose hash is right, since a bad
hash makes tiktoken re-download). Otherwise a word/punctuation estimator is used. Either way
the count is only an approximation of the served model's tokenizer, so it is scaled by what
Ollama reports (`prompt_eval_count`) for the prompts we actually sent.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path

ENCODING = "cl100k_base"
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_PIECES = re.compile(r"[A-Za-z]+|\d{1,3}|[^\sA-Za-z\d]|\s+\n|\n")
MESSAGE_OVERHEAD = 4  # role markers and separators a chat template adds per message


def _cache_file() -> Path:
    folder = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    if folder is None:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return Path(folder) / hashlib.sha1(_BLOB.encode()).hexdigest()


def encoding_on_disk() -> bool:
    """True when tiktoken can load our encoding without a download."""
    path = _cache_file()
    try:
        return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == _SHA256
    except OSError:
        return False


def encoding_status() -> str:
    """One line for `joe doctor`."""
    if encoding_on_disk():
        return f"tiktoken {ENCODING} found at {_cache_file()}"
    return (f"tiktoken {ENCODING} is not on disk ({_cache_file()}); using the offline estimator, "
            "calibrated by the server's token counts")


def estimate(text: str) -> int:
    """Offline estimate: BPE vocabularies give roughly one token per short word, per digit
    group and per symbol; long words split into several."""
    count = 0
    for piece in _PIECES.findall(text):
        count += 1 + (len(piece) - 1) // 6 if piece[0].isalpha() else 1
    return count


class TokenCounter:
    """Counts tokens for budgeting. Thread-safe enough for one agent: the encoding loads once."""

    def __init__(self, use_tiktoken: bool = True) -> None:
        self._encoding = None
        self._tried = not use_tiktoken
        self._lock = threading.Lock()
        self.scale = 1.0  # learned ratio: server tokens / our raw count

    def _load(self):
        with self._lock:
            if not self._tried:
                self._tried = True
                if encoding_on_disk():
                    try:
                        import tiktoken

                        self._encoding = tiktoken.get_encoding(ENCODING)
                    except Exception:  # any failure here just means: estimate instead
                        self._encoding = None
        return self._encoding

    @property
    def method(self) -> str:
        return "tiktoken" if self._load() is not None else "estimate"

    def raw(self, text: str) -> int:
        enc = self._load()
        if enc is not None:
            return len(enc.encode(text, disallowed_special=()))
        return estimate(text)

    def count(self, text: str) -> int:
        return int(self.raw(text) * self.scale + 0.5)

    def calibrate(self, raw_prompt: int, server_count: int | None) -> None:
        """Move the scale toward what the server measured for a prompt we counted as raw_prompt."""
        if not server_count or raw_prompt < 50:
            return
        ratio = max(0.5, min(2.5, server_count / raw_prompt))
        self.scale = ratio if self.scale == 1.0 else 0.7 * self.scale + 0.3 * ratio
