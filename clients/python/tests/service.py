"""The account service's binary, started for the tests on free ports with a
database of its own, mail written to files, and three callers:

- ``shop``: every scope, the key the tests use unless they say otherwise;
- ``reader``: ``accounts:read`` only;
- ``tight``: ``accounts:read`` with a quota of one call a minute.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ecoms_accounts import AccountClient

REPO = Path(__file__).resolve().parents[3]
#: Confirmation tokens are HS256 JWTs signed with it: tests forge expired ones.
SECRET_KEY = "python-client-tests-secret-key-0123456789abcdef"
#: The tokens' issuer (PUBLIC_BASE_URL's default) and audience.
ISSUER = "http://localhost:8080"
AUDIENCE = "ecoms"
PASSWORD = "secret123"
#: LOGIN_MAX_FAILURES: small, so that a lockout takes a few calls.
LOGIN_MAX_FAILURES = 3

ALL_SCOPES = [
    "accounts:admin",
    "events:read",
    "sessions:write",
    "sessions:verify",
]
CALLERS: dict[str, dict[str, Any]] = {
    "shop": {"scopes": ALL_SCOPES},
    "reader": {"scopes": ["accounts:read"]},
    "tight": {"scopes": ["accounts:read"], "requests_per_minute": 1},
}


def binary() -> Path:
    configured = os.environ.get("ACCOUNT_SERVICE_BIN")
    path = Path(configured).resolve() if configured else REPO / "target/debug/account-service"
    if not path.is_file():
        raise RuntimeError(
            f"no account-service binary at {path}: run `cargo build --bin account-service` "
            "or set ACCOUNT_SERVICE_BIN"
        )
    return path


def new_email(prefix: str = "shopper") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@dataclass
class Mail:
    to: str
    subject: str
    text: str

    @property
    def token(self) -> str:
        """The token of the link in the text part."""
        link = next(w for w in self.text.split() if w.startswith("http") and "token=" in w)
        return urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]

    @property
    def code(self) -> str:
        """The six-digit confirmation code of the text part."""
        return next(w for w in self.text.split() if re.fullmatch(r"\d{6}", w))


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    grpc_target: str
    http_url: str
    directory: Path
    backend: str
    keys: dict[str, str]
    _clients: list[AccountClient] = field(default_factory=list)

    @property
    def jwks_url(self) -> str:
        return f"{self.http_url}/.well-known/jwks.json"

    def client(self, caller: str | None = "shop", **options: Any) -> AccountClient:
        """A client calling as ``caller`` (None: without a key), closed when
        the service stops."""
        client = AccountClient(
            self.grpc_target, api_key=self.keys[caller] if caller else None, **options
        )
        self._clients.append(client)
        return client

    def mails_to(self, address: str) -> list[Mail]:
        mails = []
        for path in sorted((self.directory / "mail").glob("*.eml")):
            if path.name.startswith("."):
                continue
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if address.lower() not in str(message["To"]).lower():
                continue
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            mails.append(Mail(str(message["To"]), str(message["Subject"]), text))
        return mails

    def wait_for_mail(self, address: str, containing: str = "", timeout: float = 15.0) -> Mail:
        """The newest mail to ``address`` whose text contains ``containing``
        (``"confirm-registration"``, ``"reset-password"``...), once the
        delivery worker has written it."""
        deadline = time.monotonic() + timeout
        while True:
            mails = [m for m in self.mails_to(address) if containing in m.text]
            if mails:
                return mails[-1]
            if time.monotonic() > deadline:
                raise AssertionError(f"no mail to {address} with {containing!r} within {timeout} s")
            time.sleep(0.05)

    def log(self) -> str:
        return (self.directory / "service.log").read_text(errors="replace")

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _callers_file(directory: Path) -> dict[str, str]:
    """Writes API_KEYS_FILE; answers each caller's key."""
    keys = {name: f"acs_{secrets.token_urlsafe(32)}" for name in CALLERS}
    lines = []
    for name, caller in CALLERS.items():
        digest = hashlib.sha256(keys[name].encode()).hexdigest()
        lines.append(f"[callers.{name}]")
        lines.append(f"scopes = {json.dumps(caller['scopes'])}")
        lines.append(f'key_sha256 = ["{digest}"]')
        if "requests_per_minute" in caller:
            lines.append(f"requests_per_minute = {caller['requests_per_minute']}")
        lines.append("")
    (directory / "callers.toml").write_text("\n".join(lines))
    return keys


def start(database_url: str, directory: Path, backend: str) -> Service:
    """Starts the binary and waits until /readyz answers 200."""
    keys = _callers_file(directory)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL": database_url,
        # Port 0: the service binds free ports and logs them.
        "GRPC_ADDR": "127.0.0.1:0",
        "HTTP_ADDR": "127.0.0.1:0",
        "SECRET_KEY": SECRET_KEY,
        "API_KEYS_FILE": str(directory / "callers.toml"),
        "EMAIL_BACKEND": "file",
        "EMAIL_FILE_PATH": str(directory / "mail"),
        "MEDIA_STORE": f"file://{directory / 'media'}",
        "RATE_LIMITS": "off",
        "LOGIN_MAX_FAILURES": str(LOGIN_MAX_FAILURES),
        # A rotated-out refresh token is reused the moment it is presented again.
        "REFRESH_TOKEN_REUSE_INTERVAL": "0",
        "LOG_FORMAT": "json",
        "RUST_LOG": "info",
    }
    log_path = directory / "service.log"
    with open(log_path, "wb") as log:
        # The working directory is the temporary one: no stray .env is read.
        process = subprocess.Popen(
            [str(binary())], env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT
        )
    service = None
    deadline = time.monotonic() + 90
    try:
        while service is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start:\n{log_path.read_text()}")
            for line in log_path.read_text(errors="replace").splitlines():
                if "account-service listening" in line:
                    fields = json.loads(line)["fields"]
                    service = Service(
                        process=process,
                        grpc_target=fields["grpc"],
                        http_url=f"http://{fields['http']}",
                        directory=directory,
                        backend=backend,
                        keys=keys,
                    )
                    break
            else:
                time.sleep(0.05)
        while not _ready(service.http_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not become ready:\n{service.log()}")
            time.sleep(0.05)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return service


def _ready(http_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{http_url}/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# --- PostgreSQL: a fresh database per run, made and dropped with psql ---------


def create_database(server_url: str) -> tuple[str, str]:
    """Creates ``pytest_<random>`` on the server of ``server_url``; answers
    its name and URL."""
    if shutil.which("psql") is None:
        raise RuntimeError("psql is needed to create the PostgreSQL test database")
    name = f"pytest_{secrets.token_hex(6)}"
    _psql(server_url, f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(server_url)
    return name, urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


def drop_database(server_url: str, name: str) -> None:
    _psql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _psql(server_url: str, statement: str) -> None:
    subprocess.run(
        ["psql", server_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", statement],
        check=True,
        capture_output=True,
    )
