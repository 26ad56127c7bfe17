import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Knex } from 'knex';
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { decisionSecrets, planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { launchChromium, serveApp } from '../support/chromium.js';
import { buildTestApp } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, testClock, type BuiltStaff, followCreated } from '../support/staff.js';
import { audit } from '../../src/audit/record.js';
import { readFile } from 'node:fs/promises';
import { TextWriter, Uint8ArrayReader, ZipReader, configure } from '@zip.js/zip.js';
import { runOpenExports } from '../../src/services/exports/exports.service.js';

/**
 * The patient's side on a phone-sized screen (Debian's Chromium, touch, 390×844): open the link →
 * wrong date of birth → right one → accept the plan with a drawn signature → fill the intake form →
 * upload the insurance card. And a lockout run. Under the strict CSP, with no console errors and no
 * sideways scrolling; screenshots go to test-results/.
 */
configure({ useWebWorkers: false });
const SHOTS = path.resolve('test-results');
const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

describe('a patient link on a phone', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  // NOTE: one clock for the app and the authenticator codes: each staff sign-in moves it 30 s, so two
  // sign-ins never reuse a code (replay is refused).
  const clock = testClock();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let coordinator: BuiltStaff;
  let built: ReturnType<typeof buildTestApp>;
  let closeServer: (() => Promise<void>) | undefined;
  let base: string;
  let browser: Browser;
  const card = path.resolve('test-results', 'insurance-card.jpg');
  const inPractice = <T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);

  /** A patient with a presented plan, and a link for the plan, the medical history form and uploads. */
  async function linkFor(): Promise<{ code: string; patientId: string; planId: string }> {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1970-02-03' });
    const planId = randomUUID();
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patient.id, status: 'presented', presented_at: new Date(), created_by: coordinator.id, ...(await planSecrets.seal(pc, planId, { title: 'Crown on 3' })) });
      const itemId = randomUUID();
      await trx('treatment_plan_items').insert({ id: itemId, practice_id: p.id, plan_id: planId, phase: 1, ...(await planItemSecrets.seal(pc, itemId, { content: { cdt: 'D2740', tooth: '3', surfaces: null, description: 'Crown, porcelain', fee: 120000, insurance: 60000 } })) });
    });
    const history = (await inPractice((trx) => trx('form_templates').where({ key: 'medical_history' }).first('id'))).id as string;
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(`/p/${p.slug}/patients/${patient.id}/links`);
    const res = await followCreated(b, await b.agent.post(`/p/${p.slug}/patients/${patient.id}/links`).type('form').send(`_csrf=${encodeURIComponent(page.token)}&tasks=plan_review&planId=${planId}&tasks=intake_forms&forms=${history}&tasks=uploads&send=none`));
    expect(res.status).to.equal(200);
    return { code: /\/l\/([A-Za-z0-9_-]{43})/.exec(res.text)![1]!, patientId: patient.id, planId };
  }

  async function phonePage(problems: string[]): Promise<Page> {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    // An unreadable date (400), a wrong date of birth (401) and a used-up link (410) are answers the test asks for, not problems.
    page.on('console', (m) => m.type() === 'error' && !/status of (400|401|410) /.test(m.text()) && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    return page;
  }

  /** The elements wider than the screen (none on a page that fits a phone). */
  const tooWide = (page: Page) =>
    page.evaluate(() => {
      const d = (globalThis as unknown as { document: { documentElement: { clientWidth: number }; querySelectorAll(s: string): Iterable<{ tagName: string; className: string; getBoundingClientRect(): { right: number } }> } }).document;
      const width = d.documentElement.clientWidth;
      return [...d.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > width + 1).map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
    });

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'phone', name: 'Phone Dental' });
    coordinator = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['treatment_coordinator'] });
    built = buildTestApp(t.current, {}, { keyring: fx.keyring, files: fx.files, clock: clock.now });
    ({ base, close: closeServer } = await serveApp(built.app));
    await mkdir(SHOTS, { recursive: true });
    await sharp({ create: { width: 1000, height: 630, channels: 3, background: { r: 210, g: 225, b: 240 } } }).jpeg().toFile(card);
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  it('open link → wrong DOB → right DOB → accept the plan with a drawn signature → intake form → insurance card', async () => {
    const { code, patientId, planId } = await linkFor();
    const problems: string[] = [];
    const page = await phonePage(problems);

    await page.goto(`${base}/l/${code}`);
    // Every patient page carries the practice's name and phone.
    await page.getByRole('banner').getByText('Phone Dental').waitFor();
    expect(await page.getByRole('banner').textContent()).to.include('(555) 010-9999');
    await page.screenshot({ path: path.join(SHOTS, 'phone-verify.png') });
    await page.getByLabel(/Date of birth/).fill('01/01/1999');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('That did not match our records.').waitFor();
    // An unreadable date is a form error beside the field, not a try.
    await page.getByLabel(/Date of birth/).fill('13/45/1970');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.locator('#dob-error').getByText(/MM\/DD\/YYYY/).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'phone-verify-error.png') });
    // Digits only, as a phone keypad types it.
    await page.getByLabel(/Date of birth/).fill('02031970');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL('**/portal');
    expect(await tooWide(page), 'home fits the phone').to.deep.equal([]);
    await page.screenshot({ path: path.join(SHOTS, 'phone-home.png'), fullPage: true });

    // The plan: accept, type the name, draw the signature with a finger-like stroke.
    await page.getByRole('link', { name: 'Review your treatment plan' }).click();
    await page.getByText('Crown, porcelain').waitFor();
    // The total first, then each item in plain words; no empty labels.
    const summary = await page.getByLabel('Plan total').textContent();
    expect(summary).to.include('Your estimated portion: $600.00');
    expect(await page.content()).to.not.match(/Surfaces:\s*</);
    await page.screenshot({ path: path.join(SHOTS, 'phone-plan-top.png') });
    await page.getByLabel(/I accept this treatment plan/).check();
    await page.getByLabel('Your full name').fill('Pat Phoneholder');
    const canvas = page.getByLabel('Signature drawing area');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + 20, box.y + box.height * 0.7);
    await page.mouse.down();
    for (let i = 1; i <= 12; i++) await page.mouse.move(box.x + 20 + i * (box.width - 40) / 12, box.y + box.height * (0.7 - 0.4 * Math.sin(i / 2)));
    await page.mouse.up();
    await page.screenshot({ path: path.join(SHOTS, 'phone-plan.png'), fullPage: true });
    expect(await tooWide(page), 'plan page fits the phone').to.deep.equal([]);
    await page.getByRole('button', { name: 'Submit my decision' }).click();
    await page.getByText('Your decision is recorded').waitFor();
    const decision = await inPractice(async (trx) => {
      const row = await trx('plan_decisions').where({ plan_id: planId }).first('id', 'decision', 'signer');
      return { decision: row.decision as string, signer: (await decisionSecrets.open(new PracticeCrypto(fx.keyring, trx, p.id), row)).signer as { fullName: string; signature: string | null; drawing: string | null } };
    });
    expect(decision.decision).to.equal('accepted');
    expect(decision.signer.fullName).to.equal('Pat Phoneholder');
    expect(decision.signer.drawing).to.match(/^data:image\/png;base64,/);
    expect(decision.signer.signature).to.equal(null);

    // The intake form, signed by typing. The plan's task now shows done.
    await page.getByRole('link', { name: /Back/ }).first().click();
    await page.getByText('accepted, thank you').waitFor();
    await page.getByRole('link', { name: 'Medical history' }).click();
    await page.getByLabel('Allergies (medicines, latex, foods)').fill('None known');
    for (const q of ['Do you have a heart condition, artificial valve or pacemaker?', 'Do you take blood thinners?', 'Do you have diabetes?']) {
      await page.getByRole('group', { name: q }).getByLabel('No').check();
    }
    await page.getByLabel('Your full name').fill('Pat Phoneholder');
    await page.getByRole('textbox', { name: /^Signature/ }).fill('Pat Phoneholder');
    expect(await tooWide(page), 'form fits the phone').to.deep.equal([]);
    await page.getByRole('button', { name: 'Sign and submit' }).click();
    await page.waitForURL('**/portal?submitted=1');
    await page.getByText('done, thank you').waitFor();

    // The insurance card, from the phone's camera roll.
    await page.getByRole('link', { name: 'Upload your insurance card, ID or photos' }).click();
    await page.getByLabel('What is it?').selectOption('card_front');
    await page.getByLabel(/^Photo/).setInputFiles(card);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.getByText('Uploaded. Thank you.').waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'phone-uploads.png'), fullPage: true });

    expect(await inPractice((trx) => trx('form_submissions').where({ patient_id: patientId }))).to.have.length(1);
    expect(await inPractice((trx) => trx('patient_documents').where({ patient_id: patientId, kind: 'insurance_card' }))).to.have.length(1);
    expect(problems, 'console errors or CSP violations').to.deep.equal([]);
  });

  it('lockout: five wrong dates of birth show the neutral page with the phone number; the right one is refused afterwards', async () => {
    const { code } = await linkFor();
    const problems: string[] = [];
    const page = await phonePage(problems);
    await page.goto(`${base}/l/${code}`);
    for (let i = 1; i <= 4; i++) {
      await page.getByLabel(/Date of birth/).fill('12/31/1990');
      await page.getByRole('button', { name: 'Continue' }).click();
      await page.getByText('That did not match our records.').waitFor();
    }
    // Before the last try, the patient is told.
    await page.getByText(/One try left/).waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'phone-last-try.png') });
    await page.getByLabel(/Date of birth/).fill('12/31/1990');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByText('This link no longer works.').waitFor();
    expect(await page.content()).to.include('(555) 010-9999');
    await page.screenshot({ path: path.join(SHOTS, 'phone-locked.png') });
    await page.goto(`${base}/l/${code}`);
    await page.getByText('This link no longer works.').waitFor();
    expect(await page.getByLabel(/Date of birth/).count(), 'no form on a locked link').to.equal(0);
    expect(await inPractice((trx) => trx('security_alerts').where({ kind: 'link_lockout' }))).to.have.length(1);
    expect(problems).to.deep.equal([]);
  });

  it('the patient’s rights on a phone: after the date-of-birth check, who saw their record (emergency access marked with its reason), their records downloaded, a correction asked for', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1966-06-06' });
    const b = await signIn(built.app, p.slug, coordinator, clock);
    expect((await b.agent.get(`/p/${p.slug}/patients/${patient.id}`)).status).to.equal(200); // a staff view, audited
    await inPractice((trx) => audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: coordinator.id }, action: 'break_glass', resource: { type: 'patient', id: patient.id }, patientId: patient.id, outcome: 'allowed', reason: 'emergency' }));
    const page0 = await b.form(`/p/${p.slug}/patients/${patient.id}/links`);
    const res = await followCreated(b, await b.agent.post(`/p/${p.slug}/patients/${patient.id}/links`).type('form').send(`_csrf=${encodeURIComponent(page0.token)}&tasks=access_report&tasks=records_download&tasks=amendment_request&send=none`));
    const code = /\/l\/([A-Za-z0-9_-]{43})/.exec(res.text)![1]!;
    const problems: string[] = [];
    const page = await phonePage(problems);
    await page.goto(`${base}/l/${code}`);
    await page.getByLabel(/Date of birth/).fill('06/06/1966');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.screenshot({ path: path.join(SHOTS, 'phone-rights-home.png'), fullPage: true });

    // Who saw my record.
    await page.getByRole('link', { name: 'See who looked at your record' }).click();
    await page.getByRole('heading', { name: 'Who looked at your record' }).waitFor();
    const text = await page.locator('main').innerText();
    expect(text).to.include('Opened your chart').and.include('Used emergency access to your record');
    expect(await page.locator('.access-report li.emergency').count()).to.be.greaterThan(0);
    expect(await tooWide(page), 'fits a phone').to.deep.equal([]);
    await page.screenshot({ path: path.join(SHOTS, 'phone-who-saw.png'), fullPage: true });

    // Download your records: the passphrase once, the job prepares the copy, the download opens with it.
    await page.getByRole('link', { name: 'Back' }).click();
    await page.getByRole('link', { name: 'Download your records' }).click();
    await page.getByRole('button', { name: 'Prepare my records' }).click();
    const passphrase = (await page.locator('.passphrase code').innerText()).trim();
    expect(passphrase).to.match(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
    expect(await tooWide(page), 'the passphrase fits a phone').to.deep.equal([]);
    await page.screenshot({ path: path.join(SHOTS, 'phone-records-passphrase.png'), fullPage: true });
    expect((await runOpenExports({ db: t.current.db, keyring: fx.keyring, files: fx.files }, () => new Date(clock.now()), 30_000)).finished).to.equal(1);
    await page.getByRole('link', { name: 'I have written it down' }).click();
    await page.screenshot({ path: path.join(SHOTS, 'phone-records-ready.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download my records' }).click()]);
    const file = await download.path();
    const zip = new ZipReader(new Uint8ArrayReader(await readFile(file)), { password: passphrase });
    const entries = await zip.getEntries();
    expect(entries.map((e) => e.filename)).to.include.members(['Patient.ndjson', 'index.html']);
    const patientEntry = entries.find((e) => e.filename === 'Patient.ndjson');
    if (!patientEntry || patientEntry.directory) throw new Error('no Patient.ndjson');
    const patientLine = await patientEntry.getData(new TextWriter());
    expect(JSON.parse(patientLine.split('\n')[0]!)).to.deep.include({ resourceType: 'Patient', id: patient.id });
    await zip.close();

    // Ask for a correction.
    await page.goto(`${base}/portal`);
    await page.getByRole('link', { name: 'Ask for a correction to your record' }).click();
    await page.getByRole('button', { name: 'Send to the office' }).click();
    expect(await page.locator('.field-error').allInnerTexts()).to.include.members(['Choose which part of your record is wrong.', 'Write what is wrong and what it should say.']);
    await page.getByLabel(/Which part of your record/).selectOption({ index: 1 });
    await page.getByLabel(/What is wrong/).fill('My mobile number ends 4410, not 4401.');
    await page.getByRole('button', { name: 'Send to the office' }).click();
    await page.getByText('Sent. The office must answer within 60 days').waitFor();
    expect(await page.locator('main').innerText()).to.include('Waiting for the office’s answer');
    expect(await tooWide(page), 'fits a phone').to.deep.equal([]);
    await page.screenshot({ path: path.join(SHOTS, 'phone-correction-sent.png'), fullPage: true });
    const request = await inPractice((trx) => trx('patient_requests').where({ patient_id: patient.id, kind: 'amendment', received_via: 'patient_link' }).first<{ due_at: Date; received_at: Date } | undefined>('due_at', 'received_at'));
    expect(request && request.due_at.getTime() - request.received_at.getTime()).to.equal(60 * 86_400_000);
    expect(problems).to.deep.equal([]);
  });
});
