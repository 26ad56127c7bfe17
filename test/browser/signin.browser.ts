import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { generate } from 'otplib';
import type { Browser, Page } from 'playwright-core';
import { hashPassword } from '../../src/auth/password-hash.js';
import { insertUser } from '../../src/queries/users.queries.js';
import { launchChromium, serveApp, watchedPage } from '../support/chromium.js';
import { buildTestApp } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice } from '../support/factories.js';

/**
 * Real-browser checks (Debian's Chromium): the sign-in, enrolment (QR code), session-ended and
 * lockout pages render and work under the strict CSP, with no console errors. Screenshots go to
 * test-results/ for a person to look at. Run with `npm run test:browser` (CI installs chromium).
 */
const SHOTS = path.resolve('test-results');
const PASSWORD = 'gingiva enamel dentin pulp';

describe('sign-in pages in a real browser', function () {
  this.timeout(60_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let closeServer: (() => Promise<void>) | undefined;
  let base: string;
  let browser: Browser;
  let email: string;
  const problems: string[] = [];

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    await buildPractice(t.current.owner, { slug: 'browser-demo', name: 'Browser Test Dental' });
    const practiceId = (await t.current.owner('practices').where({ slug: 'browser-demo' }).first('id')).id as string;
    email = 'owner@browser.example';
    await t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, async (trx) =>
      insertUser(trx, { id: randomUUID(), practice_id: practiceId, email, display_name: 'Browser Owner', status: 'active', is_owner: true, password_hash: await hashPassword(PASSWORD) }),
    );
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, {}, { keyring: fx.keyring }).app));
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  // NOTE: a failed sign-in answers 401 on purpose; Chromium logs that as a resource error.
  const newPage = (): Promise<Page> => watchedPage(browser, problems, { expectedStatuses: [401] });

  it('signs in an owner: password, enrolment with a visible QR code, recovery codes, home', async () => {
    const page = await newPage();
    await page.goto(`${base}/p/browser-demo/sign-in`);
    expect(await page.getByRole('heading', { name: 'Staff sign-in' }).isVisible()).to.equal(true);
    await page.screenshot({ path: path.join(SHOTS, 'sign-in.png') });
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/mfa/enroll');
    const qr = page.getByAltText('QR code for your authenticator app');
    expect(await qr.evaluate((img) => { const i = img as unknown as { complete: boolean; naturalWidth: number }; return i.complete && i.naturalWidth > 100; })).to.equal(true);
    await page.screenshot({ path: path.join(SHOTS, 'enroll.png') });
    const secret = (await page.locator('code.secret').textContent())!.trim();
    await page.getByLabel('6-digit code').fill(await generate({ secret }));
    await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    expect(await page.locator('ol.codes li').count()).to.equal(10);
    await page.screenshot({ path: path.join(SHOTS, 'recovery-codes.png') });
    await page.getByRole('link', { name: /continue/ }).click();
    await page.getByRole('heading', { name: 'Welcome, Browser Owner' }).waitFor();
    await page.goto(`${base}/p/browser-demo/account`);
    await page.screenshot({ path: path.join(SHOTS, 'account.png') });
    await page.close();
  });

  it('shows the session-ended and the neutral failure pages', async () => {
    const page = await newPage();
    await page.goto(`${base}/p/browser-demo/sign-in?ended=idle`);
    expect(await page.getByRole('status').textContent()).to.include('without activity');
    await page.screenshot({ path: path.join(SHOTS, 'session-ended.png') });
    await page.getByLabel('Email address').fill(email);
    await page.getByLabel('Password').fill('definitely the wrong one');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).to.include('sign-in is paused for a few minutes after several tries');
    await page.screenshot({ path: path.join(SHOTS, 'sign-in-failed.png') });
    await page.close();
  });

  it('no console errors or CSP violations on any page', () => {
    expect(problems).to.deep.equal([]);
  });
});
