import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import { buildTestApp } from '../support/app.js';
import { launchChromium, serveApp, signInInBrowser, watchedPage } from '../support/chromium.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, testClock, type BuiltStaff } from '../support/staff.js';

/** Issue 20, as the front desk meets it at 1366×768: book, move and cancel an appointment. */
const SHOTS = path.resolve('test-results');

describe('the schedule in a real browser', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let desk: BuiltStaff;
  let hygienist: BuiltStaff;
  let p: BuiltPractice;
  let patientId: string;
  let base: string;
  let closeServer: (() => Promise<void>) | undefined;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'schedule-browser', name: 'Canine Corner Dental' });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'], name: 'Fran Desk' });
    await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'], name: 'Dr Lee' });
    hygienist = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['hygienist'], name: 'Hana Hygienist' });
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Sam', familyName: 'Scheduleton' })).id;
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now, files: fx.files }).app));
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await fx?.cleanup();
  });

  it('the front desk books from the chart, sees it on the day, moves it to another chair and time (a clash is named), and cancels it', async () => {
    const page = await watchedPage(browser, problems, { width: 1366, height: 768, expectedStatuses: [400, 409] });
    await signInInBrowser(page, base, 'schedule-browser', desk, clock);
    await page.goto(`${base}/p/schedule-browser/patients/${patientId}`);
    await page.getByRole('link', { name: 'Book an appointment' }).click();
    await page.getByRole('button', { name: 'Book' }).click();
    expect(await page.locator('.field-error').allInnerTexts()).to.include.members(['Choose the kind of appointment.', 'Choose the chair.', 'Enter the time as hh:mm (24-hour), such as 09:30.']);
    await page.getByLabel('Kind').selectOption({ label: 'Cleaning (60 min)' });
    await page.getByLabel('Chair').selectOption({ label: 'Chair 1' });
    await page.getByLabel('Provider').selectOption({ label: 'Dr Lee' });
    await page.getByLabel('Day', { exact: false }).fill('2026-03-10');
    await page.getByLabel('Time', { exact: false }).fill('09:00');
    await page.getByRole('button', { name: 'Book' }).click();
    await page.getByText('Booked.').waitFor();
    const cell = page.locator('td.appt', { hasText: 'Scheduleton, Sam' });
    expect(await cell.getAttribute('rowspan')).to.equal('4');
    expect(await cell.innerText()).to.include('Cleaning').and.include('Dr Lee');
    await page.screenshot({ path: path.join(SHOTS, 'schedule-day.png'), fullPage: false });

    // Another patient is in Chair 2 from 12:00 (booked by someone else): moving the cleaning onto it is refused, named.
    const other = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Otherton' });
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      const chair2 = await trx('operatories').where({ name: 'Chair 2', location_id: p.locationIds[0] }).first<{ id: string }>('id');
      const kind = await trx('appointment_kinds').where({ key: 'exam' }).first<{ id: string }>('id');
      await trx('appointments').insert({ id: randomUUID(), practice_id: p.id, patient_id: other.id, location_id: p.locationIds[0], provider_id: hygienist.id, chair_id: chair2!.id, kind_id: kind!.id, starts_at: new Date('2026-03-10T16:00:00Z'), ends_at: new Date('2026-03-10T17:00:00Z'), created_by: desk.id });
    });
    await cell.getByRole('link').click();
    await page.getByLabel('Chair').selectOption({ label: 'Chair 2' });
    await page.getByLabel('Time', { exact: false }).fill('11:30');
    await page.getByRole('button', { name: 'Move' }).click();
    expect(await page.locator('.field-error').allInnerTexts()).to.deep.equal(['Chair 2 is already booked 12:00 EDT–13:00 EDT. Choose another time or chair.']);
    await page.getByLabel('Time', { exact: false }).fill('13:00');
    await page.getByRole('button', { name: 'Move' }).click();
    await page.getByText('Moved.').waitFor();
    expect(await page.locator('main').innerText()).to.include('Chair 2');
    await page.getByRole('link', { name: 'Back to the day' }).click();
    expect(await page.locator('table.schedule td.appt').count(), 'the cleaning and the other patient').to.equal(2);
    await page.locator('td.appt', { hasText: 'Scheduleton, Sam' }).getByRole('link').click();
    await page.getByRole('button', { name: 'Cancel the appointment' }).click();
    expect(await page.locator('.field-error').allInnerTexts()).to.include('Choose why it is cancelled.');
    await page.getByLabel('Why').selectOption('patient_request');
    await page.getByRole('button', { name: 'Cancel the appointment' }).click();
    await page.getByText('Cancelled: the chair and the provider are free again.').waitFor();
    await page.getByRole('link', { name: 'Back to the day' }).click();
    expect(await page.locator('table.schedule td.appt', { hasText: 'Scheduleton' }).count()).to.equal(0);
    expect(await page.getByRole('heading', { name: 'Cancelled and missed' }).count()).to.equal(1);
    await page.screenshot({ path: path.join(SHOTS, 'schedule-cancelled.png'), fullPage: false });
    expect(problems).to.deep.equal([]);
  });
});
