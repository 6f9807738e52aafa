"""Runs every grpcurl and curl command of README.md, as printed, against the
service started the README's way (`cargo run`, SQLite, console mail); then
runs the README's end-to-end walkthroughs (blocks whose first line is a
comment ending in "end to end") whole, as bash scripts.

$TOKEN, $CODE, $RESET_TOKEN, $EMAIL_TOKEN and $ACCOUNT_ID, which the README
asks the reader to paste, are taken from the service's own output: the
confirmation link and code, the reset and new-address links it printed, and
the account it stored. $ACCESS_TOKEN, $REFRESH_TOKEN and $SESSION_ID are taken
from the last answer that held them (SignIn's or RefreshSession's)."""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

readme = open("README.md", encoding="utf-8").read()
commands = []
walkthroughs = []
for block in re.findall(r"```sh\n(.*?)```", readme, re.S):
    if block.startswith("#") and block.splitlines()[0].endswith("end to end"):
        walkthroughs.append(block)
        continue
    logical = block.replace("\\\n", " ")
    for line in logical.splitlines():
        line = line.strip()
        if line.startswith(("grpcurl ", "curl ")):
            commands.append(line)
if len(commands) < 8:
    sys.exit(f"expected the README's grpcurl and curl commands, found {len(commands)}")


def session_values(output):
    """$ACCESS_TOKEN, $REFRESH_TOKEN and $SESSION_ID from a grpcurl answer."""
    try:
        answer = json.loads(output)
    except ValueError:
        return {}
    if not isinstance(answer, dict):
        return {}
    values = {}
    tokens = answer.get("tokens") or {}
    for variable, field in (("ACCESS_TOKEN", "accessToken"), ("REFRESH_TOKEN", "refreshToken")):
        if field in tokens:
            values[variable] = tokens[field]
    session = answer.get("session") or {}
    if "id" in session:
        values["SESSION_ID"] = session["id"]
    return values


workdir = tempfile.mkdtemp(prefix="readme-")
out_path = os.path.join(workdir, "service.out")
env = dict(os.environ, DATABASE_URL=f"sqlite://{workdir}/account.db")
for name in ("SECRET_KEY", "EMAIL_BACKEND", "GRPC_ADDR", "HTTP_ADDR", "PUBLIC_BASE_URL", "RATE_LIMITS"):
    env.pop(name, None)
with open(out_path, "w") as out:
    # Its own process group: stopping `cargo run` must stop the service too.
    service = subprocess.Popen(
        ["cargo", "run", "--quiet", "--locked"],
        stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
try:
    for _ in range(600):
        try:
            if urllib.request.urlopen("http://localhost:8080/readyz", timeout=1).status == 200:
                break
        except OSError:
            time.sleep(0.2)
    else:
        sys.exit("the service did not become ready:\n" + open(out_path).read())

    failures = 0
    answered = {}
    for command in commands:
        text = open(out_path, encoding="utf-8", errors="replace").read()
        links = re.findall(r"confirm-registration/\?token=(\S+)", text)
        shell_env = dict(os.environ)
        if links:
            shell_env["TOKEN"] = links[-1]
        resets = re.findall(r"reset-password/\?token=(\S+)", text)
        if resets:
            shell_env["RESET_TOKEN"] = resets[-1]
        codes = re.findall(r"code where you signed up:\s+(\d{6})", text)
        if codes:
            shell_env["CODE"] = codes[-1]
        changes = re.findall(r"confirm-email/\?token=(\S+)", text)
        if changes:
            shell_env["EMAIL_TOKEN"] = changes[-1]
        try:
            row = sqlite3.connect(f"{workdir}/account.db").execute("SELECT id FROM accounts LIMIT 1").fetchone()
            if row:
                shell_env["ACCOUNT_ID"] = row[0]
        except sqlite3.Error:
            pass
        shell_env.update(answered)
        result = subprocess.run(["bash", "-c", command], env=shell_env, capture_output=True, text=True, timeout=60)
        answered.update(session_values(result.stdout))
        status = "ok" if result.returncode == 0 else f"FAILED ({result.returncode})"
        print(f"[{status}] {command}")
        if result.returncode != 0:
            failures += 1
            print(result.stdout[-2000:], result.stderr[-2000:], sep="\n")
        time.sleep(0.3)
    print(f"README commands: {len(commands)} run, {failures} with an error")

    for script in walkthroughs:
        title = script.splitlines()[0]
        # Its own process group: the services it starts go when it ends.
        walk = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            output, _ = walk.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            os.killpg(walk.pid, signal.SIGKILL)
            output, _ = walk.communicate()
        finally:
            try:
                os.killpg(walk.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        ok = walk.returncode == 0
        print(f"[{'ok' if ok else f'FAILED ({walk.returncode})'}] walkthrough: {title}")
        if not ok:
            failures += 1
            print(output[-4000:])
    sys.exit(1 if failures else 0)
finally:
    os.killpg(service.pid, signal.SIGTERM)
    service.wait(timeout=30)
