import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { generate } from 'otplib';
import type { Browser } from 'playwright-core';
import { audit } from '../../src/audit/record.js';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { buildTestApp } from '../support/app.js';
import { launchChromium, serveApp, signInInBrowser, watchedPage } from '../support/chromium.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';
import { buildStaff, testClock, type BuiltStaff } from '../support/staff.js';

/** Issue 19, as the owner meets it: a misdirected email, its affected patients from the audit log, the assessment, the deadlines, the letters. */
const SHOTS = path.resolve('test-results');

describe('incidents in a real browser', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let owner: BuiltStaff;
  let desk: BuiltStaff;
  let practiceId: string;
  let base: string;
  let closeServer: (() => Promise<void>) | undefined;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    const p = await buildPractice(t.current.owner, { slug: 'incident-browser', name: 'Harbor Dental' });
    practiceId = p.id;
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true, name: 'Olive Owner' });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'], name: 'Fran Desk' });
    // The front desk opened three charts today (the audit log records it); one was the emailed list.
    const ids: string[] = [];
    for (const name of ['Ames', 'Brook', 'Cole']) ids.push((await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Pat', familyName: `Harbor${name}` })).id);
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      for (const id of ids) await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: desk.id }, action: 'view', resource: { type: 'patient', id }, patientId: id, outcome: 'allowed' });
    });
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: fx.files }).app));
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  it('the owner opens an incident, adds the patients from the audit log, assesses it as a breach, sees the deadlines, prints a letter', async () => {
    const page = await watchedPage(browser, problems, { width: 1366, expectedStatuses: [400] });
    await signInInBrowser(page, base, 'incident-browser', owner, clock);

    // The registry first: the installation's services without agreements are red.
    await page.getByRole('link', { name: 'Business associates' }).click();
    await page.getByRole('heading', { name: 'Business associates', exact: true }).waitFor();
    expect(await page.locator('tr.coverage-missing').count()).to.be.greaterThan(0);
    await page.screenshot({ path: path.join(SHOTS, 'vendors-owner.png'), fullPage: true });

    await page.getByRole('link', { name: 'Incidents' }).click();
    await page.getByText('Open an incident').click();
    await page.getByRole('button', { name: 'Open the incident' }).click();
    expect(await page.locator('.field-error').allInnerTexts()).to.include.members(['Choose the kind of incident.', 'Describe what happened (no patient names: add patients below).']);
    await page.getByLabel('Kind of incident').selectOption('misdirected_message');
    await page.getByLabel('Email', { exact: true }).check();
    await page.getByLabel('Describe what happened').fill('A list of today’s appointments was emailed to the wrong address.');
    await page.getByLabel('Reported by').fill('Fran Desk');
    await page.getByRole('button', { name: 'Open the incident' }).click();
    await page.getByText('Incident opened.').waitFor();

    const today = new Date(clock.now()).toISOString().slice(0, 10);
    const realDay = new Date().toISOString().slice(0, 10);
    await page.getByText('Add the patients an account opened in a period').click();
    await page.getByLabel('Account').selectOption({ label: 'Fran Desk' });
    await page.getByLabel('From day').fill(realDay);
    await page.getByLabel('To day').fill(realDay);
    await page.getByRole('button', { name: 'Add these patients' }).click();
    await page.getByRole('heading', { name: 'Affected patients: 3' }).waitFor();

    await page.getByLabel('1. The nature and extent').fill('Names and appointment times of three patients.');
    await page.getByLabel('2. Who used it or received it').fill('Another patient of the practice.');
    await page.getByLabel('3. Whether it was actually acquired').fill('The recipient opened the email.');
    await page.getByLabel('4. How far the risk').fill('The recipient confirmed in writing that they deleted it.');
    await page.getByLabel('What patients can do').fill('Nothing is needed; call us with any question.');
    await page.getByLabel('A breach: the notices are required').check();
    await page.getByRole('button', { name: 'Save the assessment' }).click();
    await page.getByText('Assessment recorded').waitFor();
    const rows = await page.locator('table.tasks-table tbody tr').allInnerTexts();
    expect(rows.some((r) => r.includes('Notify each affected patient') && r.includes('within 60 days'))).to.equal(true);
    expect(rows.some((r) => r.includes('Report to HHS') && r.includes('annual log'))).to.equal(true);
    expect(rows.some((r) => r.includes('media')), 'three patients: no media notice').to.equal(false);
    await page.screenshot({ path: path.join(SHOTS, 'incident-deadlines.png'), fullPage: true });

    await page.getByRole('link', { name: 'Notification letters (print)' }).click();
    await page.getByRole('heading', { name: 'Notice of a data breach' }).first().waitFor();
    expect(await page.locator('article.letter').count()).to.equal(3);
    const first = await page.locator('article.letter').first().innerText();
    expect(first).to.include('Harbor Dental').and.include('A list of today’s appointments was emailed to the wrong address.').and.include('12 Example Street');
    await page.emulateMedia({ media: 'print' });
    await page.screenshot({ path: path.join(SHOTS, 'incident-letter-print.png'), fullPage: false });
    await page.emulateMedia({ media: 'screen' });
    const printed = await t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ action: 'print', resource_type: 'incident' }).count<{ n: string }[]>({ n: '*' }));
    expect(Number(printed[0]!.n)).to.equal(3);
    expect(today).to.match(/^\d{4}-/);
    expect(problems).to.deep.equal([]);
  });

  it('the operator records the database service’s agreement: its line turns from missing to covered, and the signed copy is stored', async () => {
    const op = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'vendors.op@platform.example', displayName: 'Vic Operator' });
    const page = await watchedPage(browser, problems, { width: 1366 });
    await page.goto(`${base}/operator/sign-in`);
    await page.getByLabel('Email').fill('vendors.op@platform.example');
    await page.getByLabel('Password').fill(op.password);
    await page.getByLabel(/code/i).fill(await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }));
    await page.getByRole('button', { name: /sign in/i }).click();
    await page.getByRole('link', { name: 'Business associates' }).click();
    await page.getByRole('heading', { name: 'Business associates of this installation' }).waitFor();
    const databaseRow = page.locator('table.coverage tr', { hasText: 'The database' });
    expect(await databaseRow.getAttribute('class')).to.equal('coverage-missing');
    // "none — record it" opens the form for that integration.
    await databaseRow.getByRole('link', { name: 'none — record it' }).click();
    expect(await page.getByLabel('The configured integration it covers').inputValue()).to.equal('database');
    await page.getByLabel('Vendor').fill('Example Managed Postgres');
    await page.getByLabel('What they do for you').fill('Database hosting');
    await page.getByLabel('Business associate agreement').selectOption('executed');
    await page.getByLabel('Signed on').fill('2026-01-15');
    await page.getByRole('button', { name: 'Add to the registry' }).click();
    await page.getByText('Saved.').waitFor();
    expect(await databaseRow.getAttribute('class')).to.equal('coverage-covered');
    await page.getByRole('link', { name: 'Example Managed Postgres' }).click();
    await page.getByLabel('Store a copy').setInputFiles({ name: 'baa.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n') });
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByText('The signed agreement is stored (encrypted).').waitFor();
    expect(await page.getByRole('link', { name: 'Download the signed copy' }).count()).to.equal(1);
    await page.goto(`${base}/operator/vendors`);
    await page.screenshot({ path: path.join(SHOTS, 'vendors-operator.png'), fullPage: true });
    expect(problems).to.deep.equal([]);
  });
});
