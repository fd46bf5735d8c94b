"""Schemathesis hooks: log in before every generated request, so each case carries a live token.

A generated `DELETE /logout` or `POST /password` revokes sessions, so a token fetched once would
turn every later case into a 401 and test nothing. Logging in afresh per case keeps the server's
authenticated paths under test. The user is created (and made admin) by the script that runs
schemathesis; its name and password come from the environment.
"""

import os
import pathlib
import re
import time
import uuid

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


# The admin operations name a user by id. Left to chance, a generated id is nobody's (a 404,
# which tests little); learned from a response, it could be the conformance user's own, and a
# disable, an erasure or a revoked `admin` would end the run's ability to test anything. So a
# positive case acts on a disposable user (registered here, and again once erased), and no case
# ever names the conformance user.
_target = {"id": None}
_own = {"id": None}


def _admin_token():
    return FreshLogin().get(None, None)["access_token"]


def _own_id(token):
    if _own["id"] is None:
        me = requests.get(
            f"{BASE_URL}/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
        me.raise_for_status()
        _own["id"] = me.json()["user_id"]
    return _own["id"]


def _target_id(token):
    """The disposable user's id, registering a new one when there is none (or it was erased)."""
    headers = {"Authorization": f"Bearer {token}"}
    if _target["id"] is not None:
        shown = requests.get(f"{BASE_URL}/admin/users/{_target['id']}", headers=headers, timeout=30)
        if shown.status_code == 200:
            return _target["id"]
    name = f"target-{uuid.uuid4().hex[:12]}"
    registered = requests.post(
        f"{BASE_URL}/register",
        json={"username": name, "password": "target password"},
        timeout=30,
    )
    registered.raise_for_status()
    found = requests.get(f"{BASE_URL}/admin/users", params={"q": name}, headers=headers, timeout=30)
    found.raise_for_status()
    _target["id"] = found.json()["users"][0]["user_id"]
    return _target["id"]


@schemathesis.hook("map_case")
def act_on_a_disposable_user(context, case):
    params = case.path_parameters
    if not params or "user_id" not in params or not case.path.startswith("/admin/users/"):
        return case
    token = _admin_token()
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive:
        params["user_id"] = _target_id(token)
    elif str(params["user_id"]).lower() == _own_id(token):
        params["user_id"] = str(uuid.uuid4())
    return case


# The server under test mails its codes to a real SMTP server (aiosmtpd) that keeps them in a
# Maildir. A generated code is never the one mailed, so every valid request to the two
# operations that take one would be a 400; this hook fetches a real code just before such a
# request is sent (`before_call`: every phase, the examples' included, and after any mapping),
# so the success path is what schemathesis checks. Negative cases keep their invalid bodies.
MAILDIR = pathlib.Path(os.environ["AUTHLOG_MAILDIR"]) / "new"


def _mails_to(address):
    files = sorted(MAILDIR.glob("*"), key=lambda f: f.stat().st_mtime) if MAILDIR.exists() else []
    return [m for m in (f.read_text() for f in files) if f"X-RcptTo: {address}" in m]


def _mailed_code(address, n):
    """The code of the `n`th mail to `address`, waiting up to 10 s for it."""
    deadline = time.monotonic() + 10
    while True:
        mails = _mails_to(address)
        if len(mails) >= n:
            return re.search(r"^\s*(\d{6})\s*$", mails[n - 1], re.MULTILINE).group(1)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no mail number {n} to {address} within 10 s")
        time.sleep(0.05)


def _verification_code():
    """Gives the conformance user a new address, and answers the code mailed to it."""
    address = f"conformance-{uuid.uuid4().hex[:12]}@example.com"
    requests.put(
        f"{BASE_URL}/me/email",
        json={"email": address},
        headers={"Authorization": f"Bearer {_admin_token()}"},
        timeout=30,
    ).raise_for_status()
    return _mailed_code(address, 1)


def _reset_code():
    """A disposable user with a verified address (one reset code a minute per user, so each
    request has a user of its own), and the reset code mailed to it."""
    name = f"reset-{uuid.uuid4().hex[:12]}"
    address = f"{name}@example.com"
    requests.post(
        f"{BASE_URL}/register",
        json={"username": name, "password": "reset password", "email": address},
        timeout=30,
    ).raise_for_status()
    login = requests.post(
        f"{BASE_URL}/login", json={"username": name, "password": "reset password"}, timeout=30
    )
    login.raise_for_status()
    requests.post(
        f"{BASE_URL}/me/email/verify",
        json={"code": _mailed_code(address, 1)},
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=30,
    ).raise_for_status()
    requests.post(f"{BASE_URL}/password/forgot", json={"email": address}, timeout=30).raise_for_status()
    return name, _mailed_code(address, 2)


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    positive = meta is None or meta.generation.mode.is_positive
    if not positive or not isinstance(case.body, dict) or case.method.upper() != "POST":
        return
    if case.path == "/me/email/verify":
        case.body["code"] = _verification_code()
    elif case.path == "/password/reset":
        case.body["username"], case.body["code"] = _reset_code()
