"""The client flow, through a Python client generated from the committed spec.

Usage: python flow.py BASE_URL  (with the generated package `authlog_client` on PYTHONPATH;
openapi/check.sh generates it with openapi-python-client and runs this, with an admin's name and
password in AUTHLOG_ADMIN_USER and AUTHLOG_ADMIN_PASSWORD).

Register, log in, call /protected, refresh, list sessions, log out, and confirm the old token
is refused; then, as the admin: find the user by prefix, disable (login says so) and enable
them, grant and revoke a role (the token issued before the revoke loses it), and erase them;
then, through the mail a real SMTP server received (read from the Maildir AUTHLOG_MAILDIR):
register with an address, verify it by its code, forget the password, and reset it by code,
which ends the sessions that were open. Each step through the generated functions and models, each answer checked by its status and its
parsed model.
"""

import os
import pathlib
import re
import sys
import time
import uuid
from http import HTTPStatus

from authlog_client import AuthenticatedClient, Client
from authlog_client.api.account import admin, protected_route
from authlog_client.api.admin import (
    admin_disable_user,
    admin_enable_user,
    admin_erase_user,
    admin_get_user,
    admin_grant_role,
    admin_list_users,
    admin_revoke_role,
)
from authlog_client.api.auth import login, logout, refresh, register
from authlog_client.api.email import forgot_password, reset_password, verify_email
from authlog_client.api.sessions import list_sessions
from authlog_client.models import (
    AccountStatus,
    AdminUserDetail,
    AdminUsers,
    CodeRequest,
    Credentials,
    DisableRequest,
    ForgotByEmail,
    LoggedInAs,
    LoginRequest,
    MessageBody,
    ResetRequest,
    SessionList,
    TokenResponse,
)


def expect(response, status, model):
    if response.status_code != status or not isinstance(response.parsed, model):
        sys.exit(
            f"expected {status.value} {model.__name__}, got {response.status_code.value}: "
            f"{response.content!r}"
        )
    return response.parsed


def main(base_url: str) -> None:
    username = f"py-{uuid.uuid4().hex[:12]}"
    password = "correct horse battery staple"
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)

    created = register.sync_detailed(
        client=anonymous, body=Credentials(username=username, password=password)
    )
    assert expect(created, HTTPStatus.CREATED, MessageBody).msg == "User registered successfully"

    logged_in = login.sync_detailed(
        client=anonymous, body=LoginRequest(username=username, password=password)
    )
    tokens = expect(logged_in, HTTPStatus.OK, TokenResponse)
    assert tokens.token_type == "Bearer" and tokens.expires_in > 0

    def bearer(token: str) -> AuthenticatedClient:
        return AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)

    me = expect(protected_route.sync_detailed(client=bearer(tokens.access_token)), HTTPStatus.OK, LoggedInAs)
    assert me.logged_in_as == username, me

    rotated = expect(
        refresh.sync_detailed(client=bearer(tokens.refresh_token)), HTTPStatus.OK, TokenResponse
    )
    assert rotated.refresh_token != tokens.refresh_token

    sessions = expect(
        list_sessions.sync_detailed(client=bearer(rotated.access_token)), HTTPStatus.OK, SessionList
    )
    assert len(sessions.sessions) == 1 and sessions.sessions[0].current, sessions

    bye = expect(logout.sync_detailed(client=bearer(rotated.access_token)), HTTPStatus.OK, MessageBody)
    assert bye.msg == "Successfully logged out"

    refused = expect(
        protected_route.sync_detailed(client=bearer(rotated.access_token)),
        HTTPStatus.UNAUTHORIZED,
        MessageBody,
    )
    assert refused.msg == "Token has been revoked", refused.msg
    print(f"python client: {username} registered, logged in, refreshed, listed, logged out; "
          "the old token is refused")
    administer(base_url, anonymous, bearer, username, password)
    recover(anonymous, bearer)


def administer(base_url, anonymous, bearer, username, password) -> None:
    """The admin flow: the user the flow registered, found, disabled, enabled, given and
    stripped of a role, erased."""
    root = expect(
        login.sync_detailed(
            client=anonymous,
            body=LoginRequest(
                username=os.environ["AUTHLOG_ADMIN_USER"],
                password=os.environ["AUTHLOG_ADMIN_PASSWORD"],
            ),
        ),
        HTTPStatus.OK,
        TokenResponse,
    )
    as_root = bearer(root.access_token)

    page = expect(
        admin_list_users.sync_detailed(client=as_root, q=username[:8].upper(), limit=1000),
        HTTPStatus.OK,
        AdminUsers,
    )
    found = [u for u in page.users if u.username == username]
    assert len(found) == 1 and found[0].status == AccountStatus.ACTIVE, page
    user_id = str(found[0].user_id)

    disabled = admin_disable_user.sync_detailed(
        user_id, client=as_root, body=DisableRequest(reason="python client flow")
    )
    assert expect(disabled, HTTPStatus.OK, MessageBody).msg.startswith("User disabled"), disabled
    refused = login.sync_detailed(
        client=anonymous, body=LoginRequest(username=username, password=password)
    )
    assert expect(refused, HTTPStatus.FORBIDDEN, MessageBody).msg == "Account disabled"
    expect(admin_enable_user.sync_detailed(user_id, client=as_root), HTTPStatus.OK, MessageBody)
    shown = expect(admin_get_user.sync_detailed(user_id, client=as_root), HTTPStatus.OK, AdminUserDetail)
    assert shown.status == AccountStatus.ACTIVE and shown.sessions == [], shown

    granted = admin_grant_role.sync_detailed(user_id, "admin", client=as_root)
    assert granted.status_code == HTTPStatus.NO_CONTENT, granted
    tokens = expect(
        login.sync_detailed(client=anonymous, body=LoginRequest(username=username, password=password)),
        HTTPStatus.OK,
        TokenResponse,
    )
    expect(admin.sync_detailed(client=bearer(tokens.access_token)), HTTPStatus.OK, object)
    revoked = admin_revoke_role.sync_detailed(user_id, "admin", client=as_root)
    assert revoked.status_code == HTTPStatus.NO_CONTENT, revoked
    stale = expect(
        admin.sync_detailed(client=bearer(tokens.access_token)), HTTPStatus.FORBIDDEN, MessageBody
    )
    assert stale.msg == "Admin access required", stale

    erased = admin_erase_user.sync_detailed(user_id, client=as_root)
    assert erased.status_code == HTTPStatus.NO_CONTENT, erased
    gone = expect(admin_get_user.sync_detailed(user_id, client=as_root), HTTPStatus.NOT_FOUND, MessageBody)
    assert gone.msg == "User not found"
    print(f"python client: as admin, found {username} by prefix, disabled and enabled them, "
          "revoked a role from a live token, erased them")


def mailed_code(address: str, n: int) -> str:
    """The code in the `n`th mail to `address`, waiting up to 10 s for it to arrive."""
    new = pathlib.Path(os.environ["AUTHLOG_MAILDIR"]) / "new"
    deadline = time.monotonic() + 10
    while True:
        files = sorted(new.glob("*"), key=lambda f: f.stat().st_mtime) if new.exists() else []
        mails = [m for m in (f.read_text() for f in files) if f"X-RcptTo: {address}" in m]
        if len(mails) >= n:
            code = re.search(r"^\s*(\d{6})\s*$", mails[n - 1], re.MULTILINE)
            assert code, mails[n - 1]
            return code.group(1)
        if time.monotonic() > deadline:
            sys.exit(f"no mail number {n} to {address} within 10 s")
        time.sleep(0.05)


def recover(anonymous, bearer) -> None:
    """The reset flow: an address given at registration and verified by its code; the
    password forgotten, reset by the mailed code; the session open before it ended."""
    username = f"py-{uuid.uuid4().hex[:12]}"
    address = f"{username}@example.com"
    password, new_password = "first password of mine", "second password of mine"
    created = register.sync_detailed(
        client=anonymous, body=Credentials(username=username, password=password, email=address)
    )
    expect(created, HTTPStatus.CREATED, MessageBody)
    tokens = expect(
        login.sync_detailed(client=anonymous, body=LoginRequest(username=username, password=password)),
        HTTPStatus.OK,
        TokenResponse,
    )
    verified = verify_email.sync_detailed(
        client=bearer(tokens.access_token), body=CodeRequest(code=mailed_code(address, 1))
    )
    expect(verified, HTTPStatus.OK, MessageBody)

    asked = forgot_password.sync_detailed(client=anonymous, body=ForgotByEmail(email=address))
    assert expect(asked, HTTPStatus.ACCEPTED, MessageBody).msg == (
        "If the account exists, a reset code has been sent"
    )
    code = mailed_code(address, 2)
    not_it = f"{(int(code) + 1) % 1_000_000:06d}"
    wrong = reset_password.sync_detailed(
        client=anonymous,
        body=ResetRequest(username=username, code=not_it, new_password=new_password),
    )
    assert expect(wrong, HTTPStatus.BAD_REQUEST, MessageBody).msg == "Invalid or expired code"
    reset = reset_password.sync_detailed(
        client=anonymous,
        body=ResetRequest(username=username, code=code, new_password=new_password),
    )
    expect(reset, HTTPStatus.OK, MessageBody)

    ended = expect(
        protected_route.sync_detailed(client=bearer(tokens.access_token)),
        HTTPStatus.UNAUTHORIZED,
        MessageBody,
    )
    assert ended.msg == "Token has been revoked", ended.msg
    old = login.sync_detailed(client=anonymous, body=LoginRequest(username=username, password=password))
    expect(old, HTTPStatus.UNAUTHORIZED, MessageBody)
    expect(
        login.sync_detailed(
            client=anonymous, body=LoginRequest(username=username, password=new_password)
        ),
        HTTPStatus.OK,
        TokenResponse,
    )
    print(f"python client: {username} verified {address} by its mailed code, forgot the "
          "password and reset it by code; the session open before is revoked")


if __name__ == "__main__":
    main(sys.argv[1])
