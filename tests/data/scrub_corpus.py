"""Corpus for tests/test_scrub.py: secrets in their real formats that must be redacted, and
look-alikes from ordinary code and prose that must survive untouched.

Every secret value is generated here from a seeded RNG in the provider's published shape
(prefix, alphabet, length), so the corpus is realistic without holding a real credential, and
no string in this file trips a secret scanner on push.
"""
from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass, field

_rng = random.Random(20261123)
_B62 = string.ascii_letters + string.digits
_B64URL = _B62 + "-_"
_B64 = _B62 + "+/"
_HEX = "0123456789abcdef"
_B32 = string.ascii_uppercase + "234567"


def _pick(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b64url_json(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


@dataclass
class Secret:
    name: str
    text: str
    vanish: list[str]  # substrings that must not survive scrub
    marker: str  # substring that must appear instead (a marker, or `~` for home paths)


@dataclass
class LookAlike:
    name: str
    text: str
    note: str = field(default="")


def _pem(label: str, lines: int = 6) -> str:
    body = "\n".join(_pick(_B64, 64) for _ in range(lines))
    return f"-----BEGIN {label}-----\n{body}\n{_pick(_B64, 20)}==\n-----END {label}-----"


def _secrets() -> list[Secret]:
    s: list[Secret] = []

    def add(name: str, template: str, value: str, marker: str, *extra: str) -> None:
        s.append(Secret(name, template.format(v=value), [value, *extra], marker))

    add("openai-legacy", "OPENAI_KEY is {v} (rotated)", "sk-" + _pick(_B62, 20) + "T3BlbkFJ" + _pick(_B62, 20),
        "[REDACTED:openai-key]")
    add("openai-project", "client = OpenAI(api_key='{v}')", "sk-proj-" + _pick(_B64URL, 156), "[REDACTED:openai-key]")
    add("openai-svcacct", "key: {v}", "sk-svcacct-" + _pick(_B64URL, 120), "[REDACTED:openai-key]")
    add("anthropic-api", "ANTHROPIC_API_KEY={v}", "sk-ant-api03-" + _pick(_B64URL, 93) + "AA",
        "[REDACTED:anthropic-key]")
    add("anthropic-admin", "curl -H 'x-api-key: {v}' https://api.anthropic.com",
        "sk-ant-admin01-" + _pick(_B64URL, 93) + "AA", "[REDACTED:anthropic-key]")
    for prefix in ("ghp", "gho", "ghu", "ghs", "ghr"):
        add(f"github-{prefix}", "git clone https://{v}@github.com/acme/app.git", f"{prefix}_" + _pick(_B62, 36),
            "[REDACTED:github-token]")
    add("github-fine-grained", "GH_TOKEN={v}", "github_pat_" + _pick(_B62, 22) + "_" + _pick(_B62, 59),
        "[REDACTED:github-token]")
    add("gitlab-pat", "export GITLAB_TOKEN={v}", "glpat-" + _pick(_B62, 20), "[REDACTED:gitlab-token]")
    add("slack-bot", "slack = WebClient(token=\"{v}\")",
        f"xoxb-{_pick(string.digits, 12)}-{_pick(string.digits, 13)}-{_pick(_B62, 24)}", "[REDACTED:slack-token]")
    add("slack-user", "{v}", f"xoxp-{_pick(string.digits, 12)}-{_pick(string.digits, 12)}-"
        f"{_pick(string.digits, 13)}-{_pick(_HEX, 32)}", "[REDACTED:slack-token]")
    add("slack-webhook", "POST {v}", "https://hooks.slack.com/services/T" + _pick(_B32, 8) + "/B" + _pick(_B32, 10)
        + "/" + _pick(_B62, 24), "[REDACTED:slack-webhook]")
    add("stripe-live", "stripe.api_key = \"{v}\"", "sk_live_" + _pick(_B62, 99), "[REDACTED:stripe-key]")
    add("stripe-restricted", "STRIPE={v}", "rk_live_" + _pick(_B62, 24), "[REDACTED:stripe-key]")
    add("google-api", "https://maps.googleapis.com/maps/api/js?key={v}", "AIza" + _pick(_B64URL, 35),
        "[REDACTED:google-api-key]")
    add("huggingface", "huggingface-cli login --token {v}", "hf_" + _pick(string.ascii_letters, 34),
        "[REDACTED:huggingface-token]")
    add("npm", "//registry.npmjs.org/:_authToken={v}", "npm_" + _pick(_B62, 36), "[REDACTED:npm-token]")
    add("pypi", "password = {v}", "pypi-AgEIcHlwaS5vcmc" + _pick(_B64URL, 70), "[REDACTED:pypi-token]")
    add("sendgrid", "sg = SendGridAPIClient('{v}')", "SG." + _pick(_B64URL, 22) + "." + _pick(_B64URL, 43),
        "[REDACTED:sendgrid-key]")
    add("twilio-api-key", "TWILIO_KEY_SID {v}", "SK" + _pick(_HEX, 32), "[REDACTED:twilio-key]")
    add("digitalocean", "doctl auth init -t {v}", "dop_v1_" + _pick(_HEX, 64), "[REDACTED:digitalocean-token]")
    add("shopify", "X-Shopify-Access-Token {v}", "shpat_" + _pick(_HEX, 32), "[REDACTED:shopify-token]")
    add("databricks", "host = x; tok {v}", "dapi" + _pick(_HEX, 32), "[REDACTED:databricks-token]")
    add("telegram-bot", "https://api.telegram.org/bot{v}/getMe", _pick("123456789", 10) + ":AA" + _pick(_B64URL, 33),
        "[REDACTED:telegram-token]")
    add("discord-webhook", "hook = '{v}'", "https://discord.com/api/webhooks/" + _pick(string.digits, 18) + "/"
        + _pick(_B64URL, 68), "[REDACTED:discord-webhook]")

    aws_id, aws_secret = "AKIA" + _pick(_B32, 16), _pick(_B64, 40)
    add("aws-access-key-id", "aws_access_key_id = {v}", aws_id, "[REDACTED:aws-access-key-id]")
    add("aws-session-key-id", "AccessKeyId: {v}", "ASIA" + _pick(_B32, 16), "[REDACTED:aws-access-key-id]")
    add("aws-secret-credentials-file", "[default]\naws_secret_access_key = {v}\n", _pick(_B64, 40),
        "[REDACTED:aws-secret-key]")
    add("aws-secret-json", '{{"SecretAccessKey": "{v}", "Expiration": "2026-01-01"}}', _pick(_B64, 40),
        "[REDACTED:aws-secret-key]")
    s.append(Secret("aws-pair-csv", f"User,Access key ID,Secret access key\nci,{aws_id},{aws_secret}\n",
                    [aws_id, aws_secret], "[REDACTED:aws-secret-key]"))

    rsa = _pem("RSA PRIVATE KEY")
    s.append(Secret("pem-rsa", f"key file:\n{rsa}\nend", [rsa.splitlines()[1], rsa.splitlines()[-2]],
                    "[REDACTED:private-key]"))
    ossh = _pem("OPENSSH PRIVATE KEY", 4)
    s.append(Secret("pem-openssh", ossh, [ossh.splitlines()[2], "BEGIN OPENSSH"], "[REDACTED:private-key]"))
    pkcs8 = _pem("PRIVATE KEY", 3)
    escaped = json.dumps({"type": "service_account", "private_key": pkcs8 + "\n"})
    s.append(Secret("pem-in-json", escaped, [pkcs8.splitlines()[2]], "[REDACTED:private-key]"))
    cut = "\n".join(_pem("EC PRIVATE KEY", 5).splitlines()[:4])
    s.append(Secret("pem-truncated", f"$ cat id_ecdsa\n{cut}\n... [output capped]", [cut.splitlines()[2]],
                    "[REDACTED:private-key]"))

    jwt = ".".join([_b64url_json({"alg": "HS256", "typ": "JWT"}),
                    _b64url_json({"sub": "1234567890", "name": "Ada", "iat": 1716239022}), _pick(_B64URL, 43)])
    add("jwt", "Cookie: session={v}; Path=/", jwt, "[REDACTED:jwt]")
    bearer = _pick(_B62, 40)
    add("bearer-header", 'curl -H "Authorization: Bearer {v}" https://api.acme.io', bearer, "[REDACTED:")
    add("authorization-basic", "Authorization: Basic {v}", base64.b64encode(b"deploy:Wq7!zP2x").decode(),
        "[REDACTED:auth-header]")

    add("url-postgres", "DATABASE_URL=postgres://app:{v}@db.acme.io:5432/app", "Xk2p9Lq7Vz", "app:[REDACTED]@")
    add("url-redis-no-user", "redis://:{v}@cache.acme.io:6379/0", "r3dis-Pa55", ":[REDACTED]@")
    add("url-https", "git remote add origin https://deploy:{v}@git.acme.io/org/repo.git", "Zx9vQ2mL7pR4tY8w",
        "deploy:[REDACTED]@git.acme.io")

    add("env-password", "PASSWORD={v}\nDEBUG=1", "hunter2", "PASSWORD=[REDACTED:secret]")
    add("env-api-key-yaml", "service:\n  API_KEY: {v}\n", _pick(_B62, 32), "API_KEY: [REDACTED:secret]")
    add("env-db-secret", "DB_SECRET={v}", "correct-horse-battery-staple", "DB_SECRET=[REDACTED:secret]")
    add("code-token-literal", 'token = "{v}"', "tok_" + _pick(_B62, 16), 'token = "[REDACTED:secret]"')
    add("export-line", "export DB_PASSWORD='{v}'", "S3cure!pass", "export DB_PASSWORD='[REDACTED:secret]'")
    add("json-api-key", '{{"name": "prod", "api_key": "{v}"}}', _pick(_HEX, 32), '"api_key": "[REDACTED:secret]"')
    add("js-client-secret", "const cfg = {{ clientSecret: '{v}' }};", _pick(_B62, 24), "[REDACTED:secret]")
    add("python-kwarg-password", 'psycopg.connect(host="db", password="{v}")', "pg-Pass-2024",
        'password="[REDACTED:secret]"')
    add("shell-pgpassword", "PGPASSWORD={v} psql -h db -U app", "Tr0ub4dor", "PGPASSWORD=[REDACTED:secret]")
    add("cli-password-flag", "mysqldump --password {v} app > dump.sql", "m4ria-db", "--password [REDACTED:secret]")
    add("query-access-token", "GET /v1/items?access_token={v}&page=2", _pick(_B62, 20), "[REDACTED:secret]")
    add("double-encoded-json", '{{\\"password\\": \\"{v}\\"}}', "n0t-in-the-file", "[REDACTED:secret]")

    add("email", "Contact {v} for access.", "alice.smith@acme-corp.io", "[REDACTED:email]")
    add("email-git-author", "Author: Bob Jones <{v}>", "bob.jones@gmail.com", "[REDACTED:email]")
    add("home-linux", "Traceback: File \"{v}/projects/app/main.py\", line 3", "/home/alice", '"~/projects/app')
    add("home-macos", "open {v}/Library/Caches/joe", "/Users/bob.smith", "~/Library")
    add("home-windows", r"C:\Users\carol\AppData\Local\joe\log.txt", r"C:\Users\carol", "~\\AppData")
    add("home-windows-escaped", '{{"cwd": "{v}\\\\src"}}', r"C:\\Users\\dave", "~\\\\src")
    return s


_SHA = _pick(_HEX, 40)

LOOKALIKES: list[LookAlike] = [
    LookAlike("sk-learn", "pip install scikit-learn  # imported as sklearn, people say sk-learn"),
    LookAlike("sk-dash-words", "see the sk-learn-compatible-estimator-interface docs"),
    LookAlike("task-id", "task-20240115-refactor-the-parser-module-and-tests is done"),
    LookAlike("git-sha", f"commit {_SHA}\nMerge: {_SHA[:7]} {_SHA[7:14]}"),
    LookAlike("uuid", "request_id = '123e4567-e89b-12d3-a456-426614174000'"),
    LookAlike("password-hash-call", "password_hash = hash(pw)"),
    LookAlike("environ-lookup", 'key = os.environ["API_KEY"]'),
    LookAlike("getenv-default", 'token = os.getenv("GITHUB_TOKEN", "")'),
    LookAlike("token-call", "token = get_token()"),
    LookAlike("token-attr-call", 'token = request.headers.get("Authorization")'),
    LookAlike("home-alone", "ls -la /home\nls /Users"),
    LookAlike("home-env-var", "cp config.yaml $HOME/.config/joe/"),
    LookAlike("version-strings", "requires python>=3.12.1, ollama 0.6.1, v1.2.3-rc.1+build.5"),
    LookAlike("base64-text", "echo SGVsbG8sIHdvcmxkISBUaGlzIGlzIGp1c3QgcGxhaW4gdGV4dC4= | base64 -d"),
    LookAlike("akia-prose", "AWS access key ids start with AKIA (long-term) or ASIA (temporary)."),
    LookAlike("decorator", "@pytest.fixture\ndef client(tmp_path):\n    return make(tmp_path)"),
    LookAlike("git-remote-scp", "git remote add origin git@github.com:org/repo.git"),
    LookAlike("git-remote-ssh-url", "git clone ssh://git@gitlab.com/group/project.git"),
    LookAlike("matmul", "y = x@self.weight + self.bias"),
    LookAlike("npm-scoped", "npm install @types/node@20.11.5 @babel/core"),
    LookAlike("max-tokens", "options = {'max_tokens': 4096, 'num_ctx': 8192}"),
    LookAlike("token-type", '{"token_type": "Bearer", "expires_in": 3600}'),
    LookAlike("dataclass-fields", "@dataclass\nclass Login:\n    password: str\n    api_key: Optional[str] = None"),
    LookAlike("type-annotation-param", "def login(user: str, password: str) -> Token:"),
    LookAlike("secret-name-k8s", "env:\n  - name: DB\n    valueFrom:\n      secretKeyRef:\n        secretName: db-creds"),
    LookAlike("password-min-length", "PASSWORD_MIN_LENGTH = 12"),
    LookAlike("password-compare", 'if password == confirm and password != "":'),
    LookAlike("kwarg-variable", "client = OpenAI(api_key=api_key, base_url=url)"),
    LookAlike("hf-function", 'path = hf_hub_download(repo_id="Qwen/Qwen2.5-Coder-1.5B", filename="x.gguf")'),
    LookAlike("slack-prose", "Slack bot tokens start with xoxb- and user tokens with xoxp-."),
    LookAlike("stripe-prose", "Never commit sk_live_ keys; use sk_test_ in CI."),
    LookAlike("github-prose", "Classic tokens look like ghp_ followed by 36 characters."),
    LookAlike("sha256-digest", "image@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    LookAlike("public-key-block", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"),
    LookAlike("certificate-block", "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUEXAMPLE\n-----END CERTIFICATE-----"),
    LookAlike("bearer-template", 'headers = {"Authorization": f"Bearer {token}"}'),
    LookAlike("bearer-prose", "Use bearer token authentication for the admin API."),
    LookAlike("export-path", "export PATH=/usr/local/bin:$PATH"),
    LookAlike("placeholder-env", 'DB_PASSWORD=${DB_PASSWORD}\nAPI_KEY="<your-api-key>"'),
    LookAlike("root-at-localhost", "ssh root@localhost -p 2222"),
    LookAlike("fstring-at", 'print(f"{user}@{host}")'),
    LookAlike("reserved-domain-email", "git config user.email ci@example.com"),
    LookAlike("expiry-number", "session_token_expiry = 3600\ntoken_count: 1234"),
    LookAlike("url-route", '@app.route("/users/<int:id>")\nhttps://example.com/home/alice/index.html'),
    LookAlike("windows-program-files", r"C:\Program Files\Python312\python.exe"),
    LookAlike("md5-hex", "md5 d41d8cd98f00b204e9800998ecf8427e  empty.txt"),
    LookAlike("long-identifier", "ThisIsAVeryLongCamelCaseIdentifierName1234567890 = compute()"),
    LookAlike("npm-config-env", "npm_config_cache=/tmp/npm npm ci"),
    LookAlike("key-value-prose", "a key-value store keeps key-0123 style ids"),
    LookAlike("url-port", "curl http://localhost:8080/api/v1/health https://host:443/path"),
    LookAlike("linuxbrew", "/home/linuxbrew/.linuxbrew/bin/brew install ripgrep"),
    LookAlike("token-none", "token = None\nsecret = False\npassword: null"),
    LookAlike("iso-dates", "2026-11-23T14:55:02Z ts=1716239022 id=20261123-145502-3f9a"),
    LookAlike("pwd-env", "PWD=/work/app\nOLDPWD=/work"),
    # found by scrubbing the installed site-packages and the standard library
    LookAlike("kwarg-lines", "    return cls(\n        token=self._token,\n        is_password=is_password,\n    )"),
    LookAlike("annotated-final", "    token: Final = next(_TRANSITION_TOKENS)\n    self.token: Token | None = None"),
    LookAlike("pygments-style", '    styles = {\n        Token: "#f8f8f2",\n        Token.String: "#AB0909",\n    }'),
    LookAlike("auth-header-code", 'authorization = self.headers.get("authorization")\nauthorization = authorization.split()'),
    LookAlike("docstring-field", "    password: The password part of the URL, or omit for no password."),
    LookAlike("cli-flag-prose", "use the --username and --password options instead of the URL"),
    LookAlike("masked-value", 'password = ":****"\nsecret_date = "****/**/**"'),
    LookAlike("build-config", "{'MODULE_PWD_STATE': 'yes', 'pass': 'The \"pass\" statement'}"),
    LookAlike("lexer-constants", 'DONE_TOKEN = "done."\nTOKEN_SEPARATOR = ", "\ntoken.markup = ">"'),
]

SECRETS: list[Secret] = _secrets()
