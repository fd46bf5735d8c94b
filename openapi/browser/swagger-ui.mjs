// Swagger UI in a real browser: Debian's Chromium, headless, driven by playwright-core.
//
// Usage: node swagger-ui.mjs BASE_URL [SCREENSHOT_ON_FAILURE]
//
// Opens /docs/, checks that every operation of /openapi.json renders, then uses "Try it out" to
// register and log in, reads the access token from the rendered response, authorises with it
// and calls the protected route, the way a person exploring the API would. Any request the page
// makes to another origin fails the check: Swagger UI must be served entirely by authlog.

import { chromium } from 'playwright-core';

const [baseUrl, screenshot] = process.argv.slice(2);
if (!baseUrl) {
  throw new Error('usage: node swagger-ui.mjs BASE_URL [SCREENSHOT_ON_FAILURE]');
}
const origin = new URL(baseUrl).origin;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  // A fresh profile per launch comes from playwright's own temporary --user-data-dir.
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
const page = await browser.newPage();
const foreign = [];
await page.route('**/*', (route) => {
  const url = route.request().url();
  if (new URL(url).origin === origin || url.startsWith('data:')) {
    return route.continue();
  }
  foreign.push(url);
  return route.abort();
});
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(error.message));
// The page is served under a Content-Security-Policy; anything it blocks is a failure.
const blocked = [];
page.on('console', (message) => {
  if (message.text().includes('Content Security Policy')) {
    blocked.push(message.text());
  }
});

// Expands an operation, presses "Try it out", optionally replaces the example body, executes,
// and returns the status and body Swagger UI renders for the live response.
async function tryItOut(operation, body) {
  const block = page.locator(`#${operation}`);
  await block.locator('.opblock-summary').first().click();
  await block.locator('button.try-out__btn').click();
  if (body !== undefined) {
    await block.locator('textarea.body-param__text').fill(JSON.stringify(body));
  }
  await block.locator('button.execute').click();
  const live = block.locator('.live-responses-table .response');
  await live.first().waitFor();
  const status = (await live.locator('.response-col_status').first().innerText()).trim();
  const text = await live.locator('.response-col_description pre').first().innerText();
  return { status, body: JSON.parse(text) };
}

function check(condition, message) {
  if (!condition) {
    throw new Error(message);
  }
}

try {
  await page.goto(`${baseUrl}/docs/`);
  await page.locator('.opblock').first().waitFor();

  const spec = await (await fetch(`${baseUrl}/openapi.json`)).json();
  const expected = Object.values(spec.paths).flatMap((operations) =>
    Object.values(operations).map((op) => `operations-${op.tags[0]}-${op.operationId}`),
  );
  for (const id of expected) {
    check((await page.locator(`#${id}`).count()) === 1, `operation ${id} is not rendered`);
  }

  const username = `browser-${Date.now()}`;
  const password = 'correct horse battery staple';
  const registered = await tryItOut('operations-Auth-register', { username, password });
  check(registered.status === '201', `register answered ${registered.status}`);
  check(registered.body.msg === 'User registered successfully', JSON.stringify(registered.body));

  const loggedIn = await tryItOut('operations-Auth-login', { username, password });
  check(loggedIn.status === '200', `login answered ${loggedIn.status}`);
  const token = loggedIn.body.access_token;
  check(typeof token === 'string' && token.split('.').length === 3, 'no access token rendered');

  // Authorise with the token through the dialog, as a person would, then call /protected.
  await page.locator('.auth-wrapper button.authorize').click();
  const dialog = page.locator('.modal-ux');
  const scheme = dialog.locator('.auth-container').filter({ hasText: 'AccessToken' }).first();
  await scheme.locator('input').first().fill(token);
  await scheme.locator('button.authorize').click();
  await dialog.locator('button.btn-done').first().click();
  const me = await tryItOut('operations-Account-protectedRoute');
  check(me.status === '200', `protected answered ${me.status}`);
  check(me.body.logged_in_as === username, JSON.stringify(me.body));

  check(foreign.length === 0, `the page asked other origins for ${foreign.join(', ')}`);
  check(pageErrors.length === 0, `the page threw: ${pageErrors.join('; ')}`);
  check(blocked.length === 0, `the Content-Security-Policy blocked: ${blocked.join('; ')}`);
  console.log(
    `swagger ui: ${expected.length} operations rendered; Try it out registered ${username}, ` +
      'logged in, and called /protected with the rendered token',
  );
} catch (error) {
  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
  }
  throw error;
} finally {
  await browser.close();
}
