import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { generate } from 'otplib';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { launchChromium, serveApp, watchedPage } from '../support/chromium.js';
import { buildTestApp } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';

/**
 * A front desk's first day in Chromium, as the testers walked it: the front door leads to
 * the sign-in in one click; the home page lists the work; the search finds what a front desk types
 * (the start of a last name, first and last name, the phone's last four); the links page shows a new
 * link once with a copy button and a QR code, and a reload creates nothing; the documents page shows
 * the insurance card (in a viewer with zoom) but not the radiograph. Screenshots in test-results/.
 */
const SHOTS = path.resolve('test-results');

describe('a front desk’s first day in a real browser', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let desk: BuiltStaff;
  let closeServer: (() => Promise<void>) | undefined;
  let base: string;
  let browser: Browser;
  let patientId: string;
  const problems: string[] = [];
  const inPractice = <T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'first-day', name: 'First Day Dental' });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: Date.now }, p, { roles: ['front_desk'], name: 'Dana Desk' });
    const clinician = await buildStaff(t.current, { keyring: fx.keyring, now: Date.now }, p, { roles: ['provider'], name: 'Dr Clinic' });
    const patient = await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Robin', familyName: 'Brightwater', dateOfBirth: '1988-09-21', phone: '(555) 013-4821' });
    await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Alex', familyName: 'Brightman', dateOfBirth: '1975-01-02', phone: '(555) 019-0007' });
    await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Sam', familyName: 'Oakley', dateOfBirth: '1990-05-06', phone: '(555) 017-4821' });
    patientId = patient.id;
    const built = buildTestApp(t.current, {}, { keyring: fx.keyring, files: fx.files });
    ({ base, close: closeServer } = await serveApp(built.app));
    await mkdir(SHOTS, { recursive: true });
    // A locked link waiting on the home page; an insurance card and a radiograph on the chart.
    await inPractice((trx) => trx('patient_links').insert({ id: randomUUID(), practice_id: p.id, patient_id: patient.id, tasks: ['uploads'], form_template_ids: [], code_hash: 'e'.repeat(64), created_by: desk.id, expires_at: new Date(Date.now() + 86_400_000), failed_attempts: 5, locked_at: new Date() }));
    const { processUpload } = await import('../../src/uploads/pipeline.js');
    const { uploadDocument } = await import('../../src/services/patients/documents.service.js');
    const { DEFAULT_ROLES } = await import('../../src/permissions.js');
    const meta = { ip: '127.0.0.1', requestId: 'first-day', now: new Date() };
    const card = await sharp({ create: { width: 1000, height: 630, channels: 3, background: { r: 200, g: 220, b: 245 } } }).composite([{ input: Buffer.from('<svg width="1000" height="630"><text x="60" y="120" font-size="64" font-family="sans-serif">DELTA DENTAL</text><text x="60" y="260" font-size="40" font-family="sans-serif">Member ID 000111</text></svg>'), top: 0, left: 0 }]).png().toBuffer();
    const xray = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 40, g: 40, b: 40 } } }).png().toBuffer();
    const deps = { db: t.current.db, keyring: fx.keyring, files: fx.files };
    // The two staff members as the services see them (their default roles, every location).
    const as = (s: BuiltStaff, role: string) => ({ kind: 'user' as const, id: s.id, practiceId: p.id, slug: p.slug, displayName: 'x', permissions: new Set(DEFAULT_ROLES.find((r) => r.key === role)!.permissions), locations: 'all' as const, isOwner: false, authAt: Date.now() });
    await uploadDocument(deps, as(desk, 'front_desk'), patient.id, { kind: 'insurance_card', title: 'Delta card, front' }, await processUpload(card, 'card.png'), meta);
    await uploadDocument(deps, as(clinician, 'provider'), patient.id, { kind: 'radiograph', title: 'Bitewing right' }, await processUpload(xray, 'bw.png'), meta);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  async function search(page: Page, typed: string): Promise<string[]> {
    await page.getByRole('link', { name: 'Patients' }).first().click();
    await page.getByLabel('Name, date of birth, phone or email').fill(typed);
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('heading', { name: 'Results' }).waitFor();
    expect(page.url(), 'nothing typed goes into the address').to.not.include(encodeURIComponent(typed).slice(0, 4));
    return page.locator('table a, ul a').filter({ hasText: ',' }).allTextContents();
  }

  it('front door → sign-in → home → search three ways → links page → documents with a viewer', async () => {
    const page = await watchedPage(browser, problems, { width: 1100, height: 900 });
    // The front door: one practice, so / is its sign-in.
    await page.goto(`${base}/`);
    await page.waitForURL('**/p/first-day/sign-in');
    await page.screenshot({ path: path.join(SHOTS, 'first-day-front-door.png') });
    await page.getByLabel('Email address').fill(desk.email);
    await page.getByLabel('Password').fill(STAFF_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/sign-in/code');
    await page.getByLabel('Code', { exact: true }).fill(await generate({ secret: desk.secret!, epoch: (Math.floor(Date.now() / 30_000) + 1) * 30 }));
    await page.getByRole('button', { name: /continue|verify|sign in/i }).click();
    await page.waitForURL('**/home');

    // Home: the locked link, naming the patient, leading to the links page.
    await page.getByRole('heading', { name: 'Locked patient links' }).waitFor();
    await page.getByText('One link is locked').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'first-day-home.png'), fullPage: true });
    expect(await page.getByRole('link', { name: 'Brightwater, Robin' }).getAttribute('href')).to.equal(`/p/first-day/patients/${patientId}/links`);

    // Search: the start of a last name finds both Bright…; first and last name finds one; the last four of a phone finds two.
    expect((await search(page, 'brig')).sort()).to.deep.equal(['Brightman, Alex', 'Brightwater, Robin']);
    await page.screenshot({ path: path.join(SHOTS, 'first-day-search.png'), fullPage: true });
    const cells = (await page.locator('tr', { hasText: 'Brightwater, Robin' }).locator('td').allTextContents()).map((c) => c.trim());
    const age = new Date().getUTCFullYear() - 1988 - (new Date().toISOString().slice(5, 10) < '09-21' ? 1 : 0);
    expect(cells, 'age').to.include(String(age));
    expect(cells.join(' '), 'a masked phone').to.include('4821').and.not.include('013');
    expect(await search(page, 'Robin Brightwater')).to.deep.equal(['Brightwater, Robin']);
    expect((await search(page, '4821')).sort()).to.deep.equal(['Brightwater, Robin', 'Oakley, Sam']);

    // The links page: create, see it once with a copy button and a QR code; a reload shows no code and creates nothing.
    await page.getByRole('link', { name: 'Brightwater, Robin' }).click();
    await page.getByRole('link', { name: 'Patient links' }).click();
    await page.getByText('Wrong dates of birth; check with the patient', { exact: false }).waitFor();
    await page.getByLabel('Upload insurance card, photo ID or photos').check();
    await page.getByRole('button', { name: 'Create link' }).click();
    const created = page.locator('#created-link');
    // CASE: this step failed intermittently in clean-clone CI runs (2 of 5) and never locally; on a
    // failure, say what the page showed instead of only timing out.
    await created.waitFor({ timeout: 15_000 }).catch(async (err: unknown) => {
      await page.screenshot({ path: path.join(SHOTS, 'first-day-link-failure.png'), fullPage: true });
      throw new Error(`no created link at ${page.url()}: ${(await page.locator('main').innerText()).slice(0, 600)}`, { cause: err });
    });
    expect(await created.inputValue()).to.match(/\/l\/[A-Za-z0-9_-]{43}$/);
    expect(await page.getByRole('button', { name: 'Copy link' }).isVisible(), 'the copy button shows once its script runs').to.equal(true);
    expect(await page.locator('.created-link svg').count(), 'a QR code').to.equal(1);
    await page.screenshot({ path: path.join(SHOTS, 'first-day-link-created.png'), fullPage: true });
    const count = () => inPractice((trx) => trx('patient_links').where({ patient_id: patientId }).count<{ n: string }[]>({ n: '*' })).then((r) => Number(r[0]!.n));
    const before = await count();
    await page.reload();
    await page.getByRole('heading', { name: 'Patient links' }).waitFor();
    expect(await page.locator('#created-link').count(), 'shown once').to.equal(0);
    expect(await count(), 'a reload creates nothing').to.equal(before);

    // Documents: the insurance card, not the radiograph; the card opens in a viewer with zoom.
    await page.getByRole('link', { name: 'Back to the chart' }).click();
    await page.getByRole('link', { name: 'Documents & images' }).click();
    await page.getByText('Delta card, front').waitFor();
    expect(await page.getByText('Bitewing right').count()).to.equal(0);
    await page.getByText('One clinical image or document is not shown to your role.').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'first-day-documents.png'), fullPage: true });
    await page.getByRole('link', { name: 'View' }).first().click();
    await page.getByRole('heading', { name: 'Delta card, front' }).waitFor();
    const image = page.getByAltText('Insurance card of Brightwater, Robin');
    await image.waitFor();
    expect(await image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).to.be.greaterThan(500);
    const fitWidth = (await image.boundingBox())!.width;
    await page.screenshot({ path: path.join(SHOTS, 'first-day-viewer.png'), fullPage: true });
    await page.getByRole('link', { name: '200%' }).click();
    await page.waitForURL('**?zoom=200');
    await image.waitFor();
    expect((await image.boundingBox())!.width, 'zoomed in').to.be.greaterThan(fitWidth * 1.5);
    await page.screenshot({ path: path.join(SHOTS, 'first-day-viewer-200.png') });
    expect(problems, 'console errors or CSP violations').to.deep.equal([]);
  });
});
