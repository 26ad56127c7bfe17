import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import sharp from 'sharp';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

describe('practice details: phone, time zone, date format, logo', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'practice-details' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let desk: BuiltStaff;
  let built: StaffApp['built'];
  const settingEvents = () => t.current.owner('audit_events').where({ practice_id: p.id, action: 'settings_change' }).orderBy('seq').pluck('details');
  const page = `/p/practice-details/settings/practice`;

  before(async () => {
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
  });

  it('a new date format and time zone change how every page shows dates and times; each change is audited with old and new, the phone without its value', async () => {
    const patient = await buildPatient(t.current.db, fx.keyring, p, { dateOfBirth: '1980-04-12' });
    const planId = randomUUID();
    const presentedAt = new Date('2026-07-01T12:00:00Z');
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patient.id, status: 'presented', presented_at: presentedAt, created_by: owner.id, ...(await planSecrets.seal(pc, planId, { title: 'Plan' })) });
      const itemId = randomUUID();
      await trx('treatment_plan_items').insert({ id: itemId, practice_id: p.id, plan_id: planId, phase: 1, ...(await planItemSecrets.seal(pc, itemId, { content: { cdt: 'D1110', tooth: null, surfaces: null, description: 'Cleaning', fee: 9000, insurance: 0 } })) });
    });
    const s = await signIn(built.app, p.slug, owner, clock);
    const chart = `/p/${p.slug}/patients/${patient.id}`;
    expect((await s.agent.get(chart)).text, 'the default: MM/DD/YYYY').to.include('04/12/1980');
    expect((await s.agent.get(`/p/${p.slug}/home`)).text, 'the default zone: New York, 12-hour').to.include('07/01/2026 8:00 AM EDT');

    const form = await s.form(page);
    expect(form.text).to.include('value="(555) 010-9999"');
    const saved = await s.agent.post(page).type('form').send({ _csrf: form.token, phone: '(555) 010-4321', timeZone: 'Europe/London', dateFormat: 'DD/MM/YYYY' });
    expect(saved.status).to.equal(303);
    expect(saved.headers.location).to.equal(`${page}?saved=1`);

    expect((await s.agent.get(chart)).text).to.include('12/04/1980').and.not.include('04/12/1980');
    expect((await s.agent.get(`/p/${p.slug}/home`)).text, 'London summer time, 24-hour').to.include('01/07/2026 13:00');
    // Dates are typed in the practice's order now.
    const newPatient = await s.form(`/p/${p.slug}/patients/new`);
    expect(newPatient.text).to.include('DD/MM/YYYY');

    const details = await settingEvents();
    expect(details).to.deep.include({ setting: 'date_format', from_value: 'MM/DD/YYYY', to_value: 'DD/MM/YYYY' });
    expect(details).to.deep.include({ setting: 'timezone', from_value: 'America/New_York', to_value: 'Europe/London' });
    expect(details).to.deep.include({ setting: 'phone' });
    expect(JSON.stringify(details)).to.not.include('4321');

    const again = await s.form(page);
    const unchanged = await s.agent.post(page).type('form').send({ _csrf: again.token, phone: '(555) 010-4321', timeZone: 'Europe/London', dateFormat: 'DD/MM/YYYY' });
    expect(unchanged.headers.location, 'saving the same values changes and records nothing').to.equal(`${page}?saved=0`);
    expect(await settingEvents()).to.have.length(details.length);
  });

  it('a logo: re-encoded to a small PNG without metadata, served publicly (test/http/links.test.ts checks the patient pages show it); a PDF is refused beside the field; removed, it is gone', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    expect((await browser(built.app).agent.get(`/p/${p.slug}/logo.png`)).status, 'no logo yet').to.equal(404);
    const form = await s.form(page);
    const big = await sharp({ create: { width: 1600, height: 800, channels: 3, background: '#0a7' } }).jpeg().withExif({ IFD0: { Make: 'LogoCam' } }).toBuffer();
    const up = await s.agent.post(`${page}/logo`).field('_csrf', form.token).attach('file', big, 'logo.jpg');
    expect(up.status).to.equal(303);
    const served = await browser(built.app).agent.get(`/p/${p.slug}/logo.png`).buffer(true);
    expect(served.status).to.equal(200);
    expect(served.headers['content-type']).to.equal('image/png');
    const meta = await sharp(served.body as Buffer).metadata();
    expect(meta.format).to.equal('png');
    expect(meta.width! <= 600 && meta.height! <= 200, `${meta.width}×${meta.height}`).to.equal(true);
    expect((served.body as Buffer).includes(Buffer.from('LogoCam'))).to.equal(false);

    const before = await inPractice((trx) => trx('practice_settings').first('logo_updated_at'));
    const pdf = await s.agent.post(`${page}/logo`).field('_csrf', (await s.form(page)).token).attach('file', Buffer.from('%PDF-1.7\n%%EOF\n'), 'logo.pdf');
    expect(pdf.status).to.be.within(400, 499);
    expect(pdf.text).to.include('id="file-err"').and.include('The logo was not saved.');
    expect(await inPractice((trx) => trx('practice_settings').first('logo_updated_at'))).to.deep.equal(before);

    const removed = await s.agent.post(`${page}/logo/remove`).type('form').send({ _csrf: (await s.form(page)).token });
    expect(removed.status).to.equal(303);
    expect((await browser(built.app).agent.get(`/p/${p.slug}/logo.png`)).status).to.equal(404);
    expect((await settingEvents()).filter((d: { setting: string }) => d.setting === 'logo')).to.have.length(2);
  });

  it('only holders of settings.manage reach the page; the front desk gets not-found and nothing changes', async () => {
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(page)).status).to.equal(404);
    const token = (await d.form(`/p/${p.slug}/patients`)).token;
    const before = await inPractice((trx) => trx('practice_settings').first('timezone', 'date_format', 'phone'));
    expect((await d.agent.post(page).type('form').send({ _csrf: token, phone: '', timeZone: 'Asia/Tokyo', dateFormat: 'YYYY-MM-DD' })).status).to.equal(404);
    expect(await inPractice((trx) => trx('practice_settings').first('timezone', 'date_format', 'phone'))).to.deep.equal(before);
  });
});
