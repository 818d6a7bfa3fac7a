"""Is this a secret's name? `DB_PASSWORD`, `clientSecret`, `x-api-key` are; `token_type`,
`max_tokens`, `is_password` and `PWD` are not. Used by the scrubber's assignment rules."""
from __future__ import annotations

import re

_PASSWORD_WORDS = {"password", "passwd", "passphrase", "passwort", "secret", "secrets", "pwd",
                   "credential", "credentials", "privatekey"}
_PASSWORD_TAILS = ("password", "passwd", "passphrase", "secret")
_KEY_PAIRS = {"api", "access", "private", "auth", "master", "encryption", "signing", "secret"}
# a secret's name with one of these at the end names something else (`token_type`, `secretName`)
_NOT_SECRET_SUFFIX = set("""type types name names id ids url uri endpoint file path dir length len count
    limit field prompt env var header ref kind policy provider expiry expires exp ttl timeout size format
    pattern regex label version max min enabled required placeholder hint help description message msg
    error mode source store manager class factory validator strength reset changed rotation index budget
    usage used ratio rate total estimate stats command cmd helper method scheme prefix suffix separator
    sep state status button icon color style key_id""".split())
# `is_password`, `has_token`: flags about a secret, not the secret
_FLAG_PREFIX = {"is", "has", "use", "uses", "should", "enable", "show", "hide", "allow", "require", "no", "with"}
_TYPE_WORDS = {"str", "string", "bytes", "int", "bool", "boolean", "float", "none", "null", "nil",
               "true", "false", "undefined", "optional", "any", "required", "object", "text",
               "char", "varchar", "uuid", "yes", "no", "on", "off", "self", "this"}
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def secret_kind(name: str) -> str | None:
    """"password" for names of human-chosen secrets (`DB_PASSWORD`, `clientSecret`), "token" for
    names of generated ones (`apiKey`, `x-api-key`, `GITHUB_TOKEN`), None for everything else,
    including names about a secret (`token_type`, `max_tokens`, `is_password`) and `PWD`."""
    parts = [p.lower() for p in _CAMEL.findall(name.rsplit(".", 1)[-1])]
    if not parts or name.upper() in {"PWD", "OLDPWD"} or parts[0] in _FLAG_PREFIX:
        return None
    if parts[-1] in _NOT_SECRET_SUFFIX or "_".join(parts[-2:]) in _NOT_SECRET_SUFFIX:
        return None
    if any(p in _PASSWORD_WORDS or p.endswith(_PASSWORD_TAILS) for p in parts):
        return "password"  # `PGPASSWORD` runs the words together
    if parts[-1] == "pass" and (len(parts) > 1 or name.isupper()):
        return "password"  # `DB_PASS`, `PASS`, but not a dict key `'pass'` (the keyword)
    if any(p in ("token", "apikey") or p.endswith("token") for p in parts):
        return "token"
    return "token" if any(a in _KEY_PAIRS and b == "key" for a, b in zip(parts, parts[1:])) else None


def is_secret_name(name: str) -> bool:
    return secret_kind(name) is not None


