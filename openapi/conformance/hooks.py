"""Schemathesis hooks: log in before every generated request, so each case carries a live token.

A generated `DELETE /logout` or `POST /password` revokes sessions, so a token fetched once would
turn every later case into a 401 and test nothing. Logging in afresh per case keeps the server's
authenticated paths under test. The user is created (and made admin) by the script that runs
schemathesis; its name and password come from the environment.
"""

import os
import time

import requests
import schemathesis

BASE_URL = os.environ["AUTHLOG_URL"]
USERNAME = os.environ["AUTHLOG_CONFORMANCE_USER"]
PASSWORD = os.environ["AUTHLOG_CONFORMANCE_PASSWORD"]


@schemathesis.auth(refresh_interval=None)
class FreshLogin:
    def get(self, case, context):
        # Schemathesis learns the username from responses and tries it with other passwords,
        # so this user does get throttled: wait out `Retry-After` (the server runs with a short
        # window) as a well-behaved client would.
        for _ in range(10):
            response = requests.post(
                f"{BASE_URL}/login",
                json={"username": USERNAME, "password": PASSWORD},
                timeout=30,
            )
            if response.status_code != 429:
                break
            time.sleep(int(response.headers["Retry-After"]))
        response.raise_for_status()
        return response.json()

    def set(self, case, data, context):
        # /refresh takes the refresh token; every other operation the access token.
        token = data["refresh_token"] if case.path == "/refresh" else data["access_token"]
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {token}"


@schemathesis.hook("map_case").apply_to(path="/password")
def change_password_for_real(context, case):
    """Lets valid password changes succeed, so the 200 answer is checked too.

    A generated `current_password` is never the user's, so every change would be a 401. For the
    positive cases only (negative ones must stay invalid), send the real password and set it
    again as the new one, so later logins keep working.
    """
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and isinstance(case.body, dict):
        case.body = {**case.body, "current_password": PASSWORD, "new_password": PASSWORD}
    return case
