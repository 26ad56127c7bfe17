import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { generate } from 'otplib';
import type { Browser } from 'playwright-core';
import sharp from 'sharp';
import { launchChromium, serveApp } from '../support/chromium.js';
import { buildTestApp } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';
import { buildStaff, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';

/**
 * The daily journey in a real browser (Debian's Chromium): sign in → find a patient → open the
 * chart → add a note → upload a photo → see its thumbnail → build a plan. Under the strict CSP,
 * with no console errors; screenshots go to test-results/.
 */
const SHOTS = path.resolve('test-results');

describe('the clinical journey in a real browser', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let closeServer: (() => Promise<void>) | undefined;
  let base: string;
  let browser: Browser;
  let provider: BuiltStaff;
  const problems: string[] = [];
  const photo = path.resolve('test-results', 'journey-photo.jpg');

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    const p = await buildPractice(t.current.owner, { slug: 'journey', name: 'Journey Dental' });
    provider = await buildStaff(t.current, { keyring: fx.keyring, now: Date.now }, p, { roles: ['provider'], name: 'Dr Journey' });
    await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Robin', familyName: 'Brightwater', dateOfBirth: '1988-09-21' });
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, {}, { keyring: fx.keyring, files: fx.files }).app));
    await mkdir(SHOTS, { recursive: true });
    await sharp({ create: { width: 900, height: 600, channels: 3, background: { r: 230, g: 205, b: 195 } } }).jpeg().toFile(photo);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  it('sign in → find patient → chart → note → photo with thumbnail → plan', async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));

    // Sign in with password and TOTP (a fresh 30-second step after enrolment).
    await page.goto(`${base}/p/journey/sign-in`);
    await page.getByLabel('Email address').fill(provider.email);
    await page.getByLabel('Password').fill(STAFF_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/sign-in/code');
    const next = (Math.floor(Date.now() / 30_000) + 1) * 30; // the next step: never the one used at enrolment
    await page.getByLabel('Code', { exact: true }).fill(await generate({ secret: provider.secret!, epoch: next }));
    await page.getByRole('button', { name: /continue|verify|sign in/i }).click();
    await page.waitForURL('**/home');

    // Find the patient by date of birth, open the chart.
    await page.getByRole('link', { name: 'Patients' }).first().click();
    await page.getByLabel('Name, date of birth, phone or email').fill('09/21/1988');
    await page.getByRole('button', { name: 'Find' }).click();
    expect(page.url()).to.not.include('1988');
    await page.getByRole('link', { name: 'Brightwater, Robin' }).click();
    await page.getByRole('heading', { name: 'Brightwater, Robin' }).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'journey-chart.png') });

    // A signed note.
    await page.getByRole('link', { name: 'Clinical notes' }).click();
    await page.getByLabel('New note').fill('Exam: no new caries. Recall six months.');
    await page.getByRole('button', { name: 'Sign (locks the note)' }).click();
    await page.getByText('Signed. The note is now locked').waitFor();
    expect(await page.getByText('Exam: no new caries. Recall six months.').isVisible()).to.equal(true);

    // A photo, shown as a thumbnail served through a signed URL.
    await page.getByRole('link', { name: 'Brightwater, Robin' }).click();
    await page.getByRole('link', { name: 'Documents & images' }).click();
    await page.getByLabel('Kind').selectOption('intraoral_photo');
    await page.getByLabel('File').setInputFiles(photo);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByText('Uploaded.').waitFor();
    const thumb = page.getByAltText('intraoral photo thumbnail');
    await thumb.waitFor();
    expect(await thumb.evaluate((img) => { const i = img as unknown as { complete: boolean; naturalWidth: number }; return i.complete && i.naturalWidth > 100; })).to.equal(true);
    await page.screenshot({ path: path.join(SHOTS, 'journey-documents.png') });

    // A plan with one item; the totals come from the server.
    await page.getByRole('link', { name: 'Brightwater, Robin' }).click();
    await page.getByRole('link', { name: 'Treatment plans' }).click();
    await page.getByLabel('New plan').fill('Phase 1 — restorative');
    await page.getByRole('button', { name: 'Start a plan' }).click();
    await page.getByText('Add an item', { exact: true }).click();
    await page.getByLabel('CDT code').fill('D2391');
    await page.getByLabel('Tooth').fill('30');
    await page.getByLabel('Surfaces').fill('O');
    await page.getByLabel('Description').fill('Resin composite, one surface');
    await page.getByLabel('Fee ($)').fill('180');
    await page.getByLabel('Insurance estimate ($)').fill('120');
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.getByText('$60.00').first().waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'journey-plan.png'), fullPage: true });
    expect(problems).to.deep.equal([]);
  });
});
