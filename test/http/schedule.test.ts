import { expect } from 'chai';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

/** The schedule's forms (issue 20, first part): bad input is a 400 beside its field and books nothing; who may book. */
describe('schedule pages', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'schedule-http', name: 'Premolar Place' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let built: StaffApp['built'];
  let desk: BuiltStaff;
  let billing: BuiltStaff;
  let patientId: string;

  before(async () => {
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    billing = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['billing'] });
    await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'], name: 'Dr Ames' });
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Bookable' })).id;
  });

  it('bad input: every error beside its field, nothing booked; a good booking lands on the day view; billing reads it and cannot book', async () => {
    const b = await signIn(built.app, p.slug, desk, clock);
    const form = await b.form(`/p/${p.slug}/patients/${patientId}/appointments/new`);
    expect(form.status).to.equal(200);
    const bad = await b.agent.post(`/p/${p.slug}/patients/${patientId}/appointments`).type('form').send({ _csrf: form.token, locationId: p.locationIds[0], chairId: 'x', providerId: '', kindId: '', day: '2026-02-30', time: '25:00', minutes: '7' });
    expect(bad.status).to.equal(400);
    expect(bad.text).to.include('Choose the chair.').and.include('Enter the day as YYYY-MM-DD.').and.include('Enter the time as hh:mm').and.include('in steps of 5').and.include('aria-invalid="true"');
    expect(await inPractice((trx) => trx('appointments').count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '0' }]);
    const chair = await inPractice((trx) => trx('operatories').where({ location_id: p.locationIds[0] }).orderBy('position').first<{ id: string }>('id'));
    const kind = await inPractice((trx) => trx('appointment_kinds').where({ key: 'exam' }).first<{ id: string }>('id'));
    const provider = await inPractice((trx) => trx('users').where({ display_name: 'Dr Ames' }).first<{ id: string }>('id'));
    const ok = await b.agent.post(`/p/${p.slug}/patients/${patientId}/appointments`).type('form').send({ _csrf: form.token, locationId: p.locationIds[0], chairId: chair!.id, providerId: provider!.id, kindId: kind!.id, day: '2026-04-01', time: '09:30' });
    expect(ok.status).to.equal(303);
    const again = await b.agent.post(`/p/${p.slug}/patients/${patientId}/appointments`).type('form').send({ _csrf: form.token, locationId: p.locationIds[0], chairId: chair!.id, providerId: provider!.id, kindId: kind!.id, day: '2026-04-01', time: '10:00' });
    expect(again.status).to.equal(409);
    expect(again.text).to.include('is already booked');
    const r = await signIn(built.app, p.slug, billing, clock);
    const day = await r.agent.get(`/p/${p.slug}/schedule?day=2026-04-01`);
    expect(day.status).to.equal(200);
    expect(day.text).to.include('Bookable, Pat').and.include('Dr Ames');
    expect((await r.agent.get(`/p/${p.slug}/patients/${patientId}/appointments/new`)).status).to.equal(404);
    // The chart lists the patient's appointments (here a past one: the test clock is today) to those who hold the schedule.
    const chart = await b.agent.get(`/p/${p.slug}/patients/${patientId}`);
    expect(chart.text).to.include('Appointments').and.include('Exam with Dr Ames');
  });
});
