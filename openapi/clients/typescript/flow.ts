// The client flow, through a TypeScript client generated from the committed spec.
//
// Usage: node dist/flow.js BASE_URL (openapi/check.sh generates ./generated with
// @hey-api/openapi-ts, compiles this with tsc, and runs it).
//
// Register, log in, call /protected, refresh, list sessions, log out, and confirm the old token
// is refused; then, as the admin named by AUTHLOG_ADMIN_USER and AUTHLOG_ADMIN_PASSWORD: find the
// user by prefix, disable (login says so) and enable them, grant and revoke a role (the token
// issued before the revoke loses it), and erase them; then, through the mail a real SMTP server
// received (read from the Maildir AUTHLOG_MAILDIR): register with an address, verify it by its
// code, forget the password, and reset it by code, which ends the sessions that were open; and,
// as the admin, follow the event feed (Server-Sent Events) until that registration arrives.
// Each step through the generated SDK
// functions, whose names come from the spec's operation ids, with the request and response
// types tsc checks against the spec.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { createClient } from './generated/client/index.js';
import {
  admin,
  adminDisableUser,
  adminEnableUser,
  adminEraseUser,
  adminGetUser,
  adminGrantRole,
  adminListUsers,
  adminRevokeRole,
  eventStream,
  forgotPassword,
  listSessions,
  login,
  logout,
  protectedRoute,
  refresh,
  register,
  resetPassword,
  verifyEmail,
} from './generated/sdk.gen.js';
import type { Auth } from './generated/core/auth.gen.js';
import type { CloudEvent } from './generated/types.gen.js';

const baseUrl = process.argv[2];
if (!baseUrl) {
  throw new Error('usage: node dist/flow.js BASE_URL');
}
const client = createClient({ baseUrl });

// Each operation declares a bearer scheme and a cookie scheme; this client uses the header.
const bearer = (token: string) => (auth: Auth) => (auth.scheme === 'bearer' ? token : undefined);

function expect(step: string, actual: number, wanted: number): void {
  if (actual !== wanted) {
    throw new Error(`${step}: expected status ${wanted}, got ${actual}`);
  }
}

const username = `ts-${crypto.randomUUID().slice(0, 12)}`;
const password = 'correct horse battery staple';

const created = await register({ client, body: { username, password } });
expect('register', created.response.status, 201);
if (created.data?.msg !== 'User registered successfully') {
  throw new Error(`register: ${JSON.stringify(created.data)}`);
}

const loggedIn = await login({ client, body: { username, password } });
expect('login', loggedIn.response.status, 200);
const tokens = loggedIn.data!;
if (tokens.token_type !== 'Bearer' || tokens.expires_in <= 0) {
  throw new Error(`login: ${JSON.stringify(tokens)}`);
}

const me = await protectedRoute({ client, auth: bearer(tokens.access_token) });
expect('protected', me.response.status, 200);
if (me.data?.logged_in_as !== username) {
  throw new Error(`protected: ${JSON.stringify(me.data)}`);
}

const rotated = await refresh({ client, auth: bearer(tokens.refresh_token) });
expect('refresh', rotated.response.status, 200);
const pair = rotated.data!;
if (pair.refresh_token === tokens.refresh_token) {
  throw new Error('refresh: the refresh token was not rotated');
}

const sessions = await listSessions({ client, auth: bearer(pair.access_token) });
expect('sessions', sessions.response.status, 200);
const list = sessions.data!.sessions;
if (list.length !== 1 || !list[0]!.current) {
  throw new Error(`sessions: ${JSON.stringify(list)}`);
}

const bye = await logout({ client, auth: bearer(pair.access_token) });
expect('logout', bye.response.status, 200);
if (bye.data?.msg !== 'Successfully logged out') {
  throw new Error(`logout: ${JSON.stringify(bye.data)}`);
}

const refused = await protectedRoute({ client, auth: bearer(pair.access_token) });
expect('protected after logout', refused.response.status, 401);
if (refused.error?.msg !== 'Token has been revoked') {
  throw new Error(`protected after logout: ${JSON.stringify(refused.error)}`);
}

console.log(
  `typescript client: ${username} registered, logged in, refreshed, listed, logged out; ` +
    'the old token is refused',
);

const root = await login({
  client,
  body: {
    username: process.env.AUTHLOG_ADMIN_USER!,
    password: process.env.AUTHLOG_ADMIN_PASSWORD!,
  },
});
expect('admin login', root.response.status, 200);
const asRoot = bearer(root.data!.access_token);

const page = await adminListUsers({
  client,
  auth: asRoot,
  query: { q: username.slice(0, 8).toUpperCase(), limit: 1000 },
});
expect('list users', page.response.status, 200);
const found = page.data!.users.filter((u) => u.username === username);
if (found.length !== 1 || found[0]!.status !== 'active') {
  throw new Error(`list users: ${JSON.stringify(page.data)}`);
}
const path = { user_id: found[0]!.user_id };

const disabled = await adminDisableUser({
  client,
  auth: asRoot,
  path,
  body: { reason: 'typescript client flow' },
});
expect('disable', disabled.response.status, 200);
const refusedLogin = await login({ client, body: { username, password } });
expect('login while disabled', refusedLogin.response.status, 403);
if (refusedLogin.error?.msg !== 'Account disabled') {
  throw new Error(`login while disabled: ${JSON.stringify(refusedLogin.error)}`);
}
expect('enable', (await adminEnableUser({ client, auth: asRoot, path })).response.status, 200);
const shown = await adminGetUser({ client, auth: asRoot, path });
expect('show', shown.response.status, 200);
if (shown.data!.status !== 'active' || shown.data!.sessions.length !== 0) {
  throw new Error(`show: ${JSON.stringify(shown.data)}`);
}

const role = { ...path, role: 'admin' };
expect('grant', (await adminGrantRole({ client, auth: asRoot, path: role })).response.status, 204);
const promoted = await login({ client, body: { username, password } });
expect('login as admin', promoted.response.status, 200);
const promotedToken = bearer(promoted.data!.access_token);
expect('admin check', (await admin({ client, auth: promotedToken })).response.status, 200);
expect('revoke', (await adminRevokeRole({ client, auth: asRoot, path: role })).response.status, 204);
const stale = await admin({ client, auth: promotedToken });
expect('admin check after revoke', stale.response.status, 403);

expect('erase', (await adminEraseUser({ client, auth: asRoot, path })).response.status, 204);
expect('show erased', (await adminGetUser({ client, auth: asRoot, path })).response.status, 404);
console.log(
  `typescript client: as admin, found ${username} by prefix, disabled and enabled them, ` +
    'revoked a role from a live token, erased them',
);

// The code in the `n`th mail to `address`, waiting up to 10 s for it to arrive.
async function mailedCode(address: string, n: number): Promise<string> {
  const dir = join(process.env.AUTHLOG_MAILDIR!, 'new');
  const deadline = Date.now() + 10_000;
  for (;;) {
    let files: string[] = [];
    try {
      files = readdirSync(dir).map((name) => join(dir, name));
    } catch {
      // No mail yet: the Maildir is made on the first delivery.
    }
    const mails = files
      .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs)
      .map((file) => readFileSync(file, 'utf8'))
      .filter((mail) => mail.includes(`X-RcptTo: ${address}`));
    const mail = mails[n - 1];
    if (mail !== undefined) {
      const code = /^\s*(\d{6})\s*$/m.exec(mail)?.[1];
      if (!code) {
        throw new Error(`no code in ${mail}`);
      }
      return code;
    }
    if (Date.now() > deadline) {
      throw new Error(`no mail number ${n} to ${address} within 10 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const mailUser = `ts-${crypto.randomUUID().slice(0, 12)}`;
const address = `${mailUser}@example.com`;
const newPassword = 'second password of mine';
expect(
  'register with an address',
  (await register({ client, body: { username: mailUser, password, email: address } })).response
    .status,
  201,
);
const mailLogin = await login({ client, body: { username: mailUser, password } });
expect('login with an address', mailLogin.response.status, 200);
const mailToken = bearer(mailLogin.data!.access_token);
const verified = await verifyEmail({
  client,
  auth: mailToken,
  body: { code: await mailedCode(address, 1) },
});
expect('verify', verified.response.status, 200);

const asked = await forgotPassword({ client, body: { email: address } });
expect('forgot', asked.response.status, 202);
if (asked.data?.msg !== 'If the account exists, a reset code has been sent') {
  throw new Error(`forgot: ${JSON.stringify(asked.data)}`);
}
const code = await mailedCode(address, 2);
const notIt = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
const wrong = await resetPassword({
  client,
  body: { username: mailUser, code: notIt, new_password: newPassword },
});
expect('reset with a wrong code', wrong.response.status, 400);
if (wrong.error?.msg !== 'Invalid or expired code') {
  throw new Error(`reset with a wrong code: ${JSON.stringify(wrong.error)}`);
}
const reset = await resetPassword({
  client,
  body: { username: mailUser, code, new_password: newPassword },
});
expect('reset', reset.response.status, 200);
expect(
  'protected after reset',
  (await protectedRoute({ client, auth: mailToken })).response.status,
  401,
);
expect(
  'login with the old password',
  (await login({ client, body: { username: mailUser, password } })).response.status,
  401,
);
expect(
  'login with the new password',
  (await login({ client, body: { username: mailUser, password: newPassword } })).response.status,
  200,
);
console.log(
  `typescript client: ${mailUser} verified ${address} by its mailed code, forgot the password ` +
    'and reset it by code; the session open before is revoked',
);

// The feed, through the generated SSE client: the log's `Registered` events, from the first,
// until the one of the user registered above.
const aborted = new AbortController();
const { stream } = await eventStream({
  client,
  auth: asRoot,
  query: { type: ['Registered'] },
  signal: aborted.signal,
  sseMaxRetryAttempts: 1,
});
const deadline = setTimeout(() => aborted.abort(), 10_000);
let seen = 0;
let arrived: CloudEvent | undefined;
for await (const item of stream) {
  // The spec declares the stream as an array of CloudEvents; each SSE event is one.
  const event = item as unknown as CloudEvent;
  seen += 1;
  if (event.type !== 'dev.authlog.Registered' || event.specversion !== '1.0') {
    throw new Error(`feed: ${JSON.stringify(event)}`);
  }
  if ((event.data.data as { username?: string }).username === mailUser) {
    arrived = event;
    break;
  }
}
clearTimeout(deadline);
aborted.abort();
if (!arrived || String(arrived.authlogposition) !== arrived.id) {
  throw new Error(`feed: the registration of ${mailUser} did not arrive (${seen} events)`);
}
console.log(
  `typescript client: followed the event feed through ${seen} Registered events to ` +
    `${mailUser}'s (position ${arrived.id})`,
);
