import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { buildTestApp } from '../support/app.js';
import { launchChromium, serveApp, signInInBrowser, watchedPage } from '../support/chromium.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';
import { buildStaff, testClock, type BuiltStaff } from '../support/staff.js';

/** Issue 18, as the office manager meets it: a patient's amendment and a "no texts" choice, from the chart. */
const SHOTS = path.resolve('test-results');

describe('patient rights in a real browser', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let manager: BuiltStaff;
  let patientId: string;
  let base: string;
  let closeServer: (() => Promise<void>) | undefined;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    const p = await buildPractice(t.current.owner, { slug: 'rights-browser', name: 'Enamel Edge Dental' });
    manager = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['office_manager'], name: 'Mia Manager' });
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Rosa', familyName: 'Rightsworth' })).id;
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: fx.files }).app));
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  it('records a “no texts” rule and a demographics amendment, denies it, adds the statement; the chart shows both', async () => {
    const page = await watchedPage(browser, problems, { width: 1100, expectedStatuses: [400] });
    await signInInBrowser(page, base, 'rights-browser', manager, clock);
    await page.goto(`${base}/p/rights-browser/patients/${patientId}`);
    await page.getByRole('link', { name: 'Rights & disclosures' }).click();

    await page.getByText('Record the practice’s answer to a restriction or a contact preference').click();
    await page.getByLabel('The patient asked for').selectOption('confidential_communication');
    await page.getByLabel('How to contact them (confidential communications)').selectOption('no_text');
    await page.getByLabel('What they asked', { exact: true }).fill('No texts: the phone is shared at home');
    await page.getByRole('button', { name: 'Record the answer' }).last().click();

    await page.getByText('Record an amendment the patient asks for').click();
    await page.getByLabel('Which part of the record').selectOption({ label: 'Demographics (name, birth date, contact, address, insurance)' });
    await page.getByLabel('What the patient wants changed').fill('My birth date is the 13th');
    await page.getByRole('button', { name: /Record the amendment request/ }).click();
    await page.getByLabel('Decision').selectOption('denied');
    await page.getByLabel(/The amendment as appended/).fill('The ID card on file shows the 12th');
    await page.getByRole('button', { name: 'Record the decision' }).click();
    await page.getByLabel(/statement of disagreement/).fill('I was born on the 13th; my ID card is wrong');
    await page.getByRole('button', { name: 'Add the statement' }).click();
    await page.screenshot({ path: path.join(SHOTS, 'rights-patient.png'), fullPage: true });

    await page.getByRole('link', { name: 'Back to the chart' }).click();
    const chart = await page.locator('main').innerText();
    expect(chart).to.include('The practice agreed: confidential communications — no text messages');
    expect(chart).to.include('denied').and.include('The ID card on file shows the 12th').and.include('my ID card is wrong');
    await page.screenshot({ path: path.join(SHOTS, 'rights-chart.png'), fullPage: true });
    await page.getByRole('link', { name: 'Patient requests' }).click();
    expect(await page.locator('main').innerText()).to.include('Rightsworth, Rosa');
    await page.screenshot({ path: path.join(SHOTS, 'rights-register.png'), fullPage: true });
    expect(problems).to.deep.equal([]);
  });
});
