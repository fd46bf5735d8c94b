"""The client flow, through a Python client generated from the committed spec.

Usage: python flow.py BASE_URL  (with the generated package `authlog_client` on PYTHONPATH;
openapi/check.sh generates it with openapi-python-client and runs this).

Register, log in, call /protected, refresh, list sessions, log out, and confirm the old token
is refused: each step through the generated functions and models, each answer checked by its
status and its parsed model.
"""

import sys
import uuid
from http import HTTPStatus

from authlog_client import AuthenticatedClient, Client
from authlog_client.api.account import protected_route
from authlog_client.api.auth import login, logout, refresh, register
from authlog_client.api.sessions import list_sessions
from authlog_client.models import (
    Credentials,
    LoggedInAs,
    LoginRequest,
    MessageBody,
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


if __name__ == "__main__":
    main(sys.argv[1])
