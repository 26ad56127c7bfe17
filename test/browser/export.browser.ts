import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { createLogger } from '../../src/config/logger.js';
import { exportJob } from '../../src/jobs/export.job.js';
import { runJob } from '../../src/jobs/scheduler.js';
import { buildTestApp } from '../support/app.js';
import { launchChromium, serveApp, signInInBrowser, watchedPage } from '../support/chromium.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { buildStaff, testClock, type BuiltStaff } from '../support/staff.js';

/** Issue 17, as the owner meets it: start an export, note the passphrase, watch it, download it. */
const SHOTS = path.resolve('test-results');

describe('the practice export in a real browser', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let owner: BuiltStaff;
  let base: string;
  let closeServer: (() => Promise<void>) | undefined;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    const p = await buildPractice(t.current.owner, { slug: 'export-browser', name: 'Wisdom Way Dental' });
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true, name: 'Olga Owner' });
    for (let i = 0; i < 4; i++) await buildPatient(t.current.db, fx.keyring, p);
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: fx.files }).app));
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  it('the owner exports every patient and downloads the encrypted archive', async () => {
    const page = await watchedPage(browser, problems, { width: 1100 });
    await signInInBrowser(page, base, 'export-browser', owner, clock);
    await page.getByRole('link', { name: 'Export', exact: true }).click();
    await page.screenshot({ path: path.join(SHOTS, 'export-start.png'), fullPage: true });
    await page.getByRole('button', { name: 'Start an export of every patient' }).click();
    const passphrase = (await page.locator('.passphrase code').innerText()).trim();
    expect(passphrase).to.match(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    await page.screenshot({ path: path.join(SHOTS, 'export-passphrase.png'), fullPage: true });
    await page.reload();
    const progress = await page.locator('body').innerText();
    expect(progress).to.not.include(passphrase);
    expect(progress).to.include('0 of 4 patients');
    await page.screenshot({ path: path.join(SHOTS, 'export-progress.png'), fullPage: true });
    expect((await runJob(exportJob, { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent'), clock: clock.now })).outcome).to.equal('ok');
    await page.reload();
    await page.getByRole('link', { name: 'Download the encrypted export' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'export-ready.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the encrypted export' }).click()]);
    expect(download.suggestedFilename()).to.match(/^enamel-export-export-browser-\d{4}-\d{2}-\d{2}\.zip$/);
    expect(problems).to.deep.equal([]);
  });
});
