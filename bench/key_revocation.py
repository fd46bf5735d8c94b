#!/usr/bin/env python3
"""How long after `authlog keys revoke KID` exits a running server refuses that key's tokens.

Usage: bench/key_revocation.py AUTHLOG_BINARY DATABASE_URL [ROUNDS]
(the database must exist for PostgreSQL; a sqlite:// file is created). Starts `authlog serve`
on it, then ROUNDS times: logs in, revokes the key that signed the token, and polls
GET /protected every 5 ms until it answers 401. Prints each delay and their median.
"""
import base64, json, os, statistics, subprocess, sys, time, urllib.error, urllib.request

binary, url = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
env = {**os.environ, "AUTHLOG_DATABASE_URL": url}
server = subprocess.Popen(
    [binary, "serve", "--bind", "127.0.0.1:0", "--argon2-memory-kib", "1024", "--argon2-iterations", "1"],
    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
base = server.stdout.readline().strip().replace("authlog listening on ", "")


def call(method, path, body=None, token=None):
    request = urllib.request.Request(base + path, method=method,
                                     data=json.dumps(body).encode() if body else None)
    if body:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def kid(token):
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


try:
    credentials = {"username": "alice", "password": "correct horse battery"}
    call("POST", "/register", credentials)
    delays = []
    for _ in range(rounds):
        _, tokens = call("POST", "/login", credentials)
        subprocess.run([binary, "keys", "revoke", "--", kid(tokens["access_token"])],
                       env=env, check=True, capture_output=True)
        revoked = time.monotonic()
        while call("GET", "/protected", token=tokens["access_token"])[0] != 401:
            time.sleep(0.005)
        delays.append(time.monotonic() - revoked)
    print(f"{url.split(':')[0]}: refused {', '.join(f'{d * 1000:.0f}' for d in delays)} ms after "
          f"the CLI exited; median {statistics.median(delays) * 1000:.0f} ms")
finally:
    server.kill()
