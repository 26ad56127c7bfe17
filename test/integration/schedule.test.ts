import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { AccessDenied, type StaffActor } from '../../src/policies/index.js';
import { bookAppointment, cancelAppointment, moveAppointment, scheduleDay, setAppointmentStatus, type BookingInput } from '../../src/services/schedule/schedule.service.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff } from '../support/staff.js';

/** The schedule (issue 20, first part): clashes refused by the service and by the database; the day view audited. */
describe('the schedule: appointments per chair and provider', function () {
  this.timeout(60_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let desk: StaffActor;
  let billing: StaffActor;
  let chairs: { id: string; name: string }[];
  let providers: { id: string; name: string }[];
  let kinds: { id: string; name: string; minutes: number }[];
  let patientA: string;
  let patientB: string;
  const now = Date.UTC(2026, 2, 9, 14);
  const meta = () => ({ ip: '127.0.0.1', requestId: 'req-schedule-1', now: new Date(now) });
  const deps = () => ({ db: t.current.db, keyring: fx.keyring });
  const actorFor = (id: string, permissions: readonly string[], isOwner: boolean): StaffActor => ({ kind: 'user', id, practiceId: p.id, slug: p.slug, displayName: 'X', permissions: new Set(permissions), locations: 'all', isOwner, authAt: now }) as StaffActor;
  const slot = (o: Partial<BookingInput>): BookingInput => ({ locationId: p.locationIds[0]!, chairId: chairs[0]!.id, providerId: providers[0]!.id, kindId: kinds.find((k) => k.name === 'Exam')!.id, day: '2026-03-10', time: '10:00', minutes: null, note: '', ...o });

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    p = await buildPractice(t.current.owner, { slug: 'schedule' });
    const d = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['front_desk'] });
    const b = await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['billing'] });
    await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['provider'], name: 'Dr Lee' });
    await buildStaff(t.current, { keyring: fx.keyring, now: () => now }, p, { roles: ['hygienist'], name: 'Hana Hygienist' });
    desk = actorFor(d.id, ['patients.read', 'patients.write', 'schedule.read', 'schedule.manage'], false);
    billing = actorFor(b.id, ['patients.read', 'schedule.read'], false);
    patientA = (await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Chairone' })).id;
    patientB = (await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Chairtwo' })).id;
    const day = await scheduleDay(deps(), desk, { day: '2026-03-10' }, meta());
    chairs = day.chairs;
    providers = day.providers.filter((x) => x.name === 'Dr Lee' || x.name === 'Hana Hygienist');
    kinds = day.kinds;
  });
  after(() => fx.cleanup());

  it('a new practice has two chairs per location and the default kinds; the providers are the clinicians', () => {
    expect(chairs.map((c) => c.name)).to.deep.equal(['Chair 1', 'Chair 2']);
    expect(kinds.map((k) => [k.name, k.minutes])).to.deep.include.members([['Cleaning', 60], ['Emergency', 30], ['Exam', 60]]);
    expect(providers.map((x) => x.name).sort()).to.deep.equal(['Dr Lee', 'Hana Hygienist']);
  });

  it('two appointments overlapping on one chair: the service refuses with the clash named; the database refuses a direct insert too', async () => {
    const first = await bookAppointment(deps(), desk, patientA, slot({}), meta());
    expect(first.ok).to.equal(true);
    const sameChair = await bookAppointment(deps(), desk, patientB, slot({ time: '10:30', providerId: providers[1]!.id }), meta());
    expect(sameChair).to.deep.include({ ok: false, field: 'time' });
    expect((sameChair as { error: string }).error).to.match(/^Chair 1 is already booked 10:00.*11:00/);
    const sameProvider = await bookAppointment(deps(), desk, patientB, slot({ time: '10:30', chairId: chairs[1]!.id }), meta());
    expect(sameProvider).to.deep.include({ ok: false, field: 'providerId' });
    expect((sameProvider as { error: string }).error).to.include('Dr Lee already has an appointment');
    expect((await bookAppointment(deps(), desk, patientB, slot({ time: '11:00' }), meta())).ok, 'back to back is fine').to.equal(true);
    // The database: a direct insert overlapping on the chair fails on the exclusion constraint.
    const direct = await t.current.db
      .withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('appointments').insert({ id: randomUUID(), practice_id: p.id, patient_id: patientB, location_id: p.locationIds[0], provider_id: providers[1]!.id, chair_id: chairs[0]!.id, kind_id: kinds[0]!.id, starts_at: new Date('2026-03-10T15:15:00Z'), ends_at: new Date('2026-03-10T15:45:00Z'), created_by: desk.id }))
      .catch((e: { code?: string; constraint?: string }) => e);
    expect(direct).to.deep.include({ code: '23P01', constraint: 'appointments_chair_free' });
    const directProvider = await t.current.db
      .withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('appointments').insert({ id: randomUUID(), practice_id: p.id, patient_id: patientB, location_id: p.locationIds[0], provider_id: providers[0]!.id, chair_id: chairs[1]!.id, kind_id: kinds[0]!.id, starts_at: new Date('2026-03-10T15:15:00Z'), ends_at: new Date('2026-03-10T15:45:00Z'), created_by: desk.id }))
      .catch((e: { code?: string; constraint?: string }) => e);
    expect(directProvider).to.deep.include({ code: '23P01', constraint: 'appointments_provider_free' });
  });

  it('cancelling frees the chair; a move is checked like a booking; the day view names patients, each an audited read; billing reads, cannot book', async () => {
    const booked = await bookAppointment(deps(), desk, patientA, slot({ time: '14:00', chairId: chairs[1]!.id, providerId: providers[1]!.id }), meta());
    if (!booked.ok) throw new Error(booked.error);
    expect((await bookAppointment(deps(), desk, patientB, slot({ time: '14:00', chairId: chairs[1]!.id, providerId: providers[0]!.id }), meta())).ok).to.equal(false);
    expect(await cancelAppointment(deps(), desk, booked.value, 'patient_request', meta())).to.deep.include({ ok: true });
    const taken = await bookAppointment(deps(), desk, patientB, slot({ time: '14:00', chairId: chairs[1]!.id, providerId: providers[0]!.id }), meta());
    expect(taken.ok, 'the cancelled one no longer holds the chair').to.equal(true);
    // Moving the 10:00 exam onto the 14:00 one is refused; to 16:00 it goes.
    const day = await scheduleDay(deps(), desk, { day: '2026-03-10' }, meta());
    const exam = day.appointments.find((a) => a.patientName?.startsWith('Chairone') && a.status === 'scheduled' && a.minutes === 60 && a.chairId === chairs[0]!.id)!;
    expect(await moveAppointment(deps(), desk, exam.id, { chairId: chairs[1]!.id, providerId: providers[0]!.id, day: '2026-03-10', time: '14:30', minutes: 60 }, meta())).to.deep.include({ ok: false });
    expect(await moveAppointment(deps(), desk, exam.id, { chairId: chairs[1]!.id, providerId: providers[0]!.id, day: '2026-03-10', time: '16:00', minutes: 60 }, meta())).to.deep.include({ ok: true });
    expect(await setAppointmentStatus(deps(), desk, exam.id, 'completed', meta()), 'not straight from scheduled').to.deep.include({ ok: false });
    expect(await setAppointmentStatus(deps(), desk, exam.id, 'arrived', meta())).to.deep.include({ ok: true });
    const read = await scheduleDay(deps(), billing, { day: '2026-03-10' }, meta());
    expect(read.mayBook).to.equal(false);
    expect(read.appointments.map((a) => a.patientName).filter(Boolean).length).to.be.greaterThan(0);
    const audited = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('audit_events').where({ actor_id: billing.id, action: 'list', resource_type: 'appointment' }).pluck('patient_id'));
    expect(audited.sort()).to.deep.equal([patientA, patientB].sort());
    expect(await bookAppointment(deps(), billing, patientA, slot({ time: '18:00' }), meta()).catch((e: unknown) => e)).to.be.instanceOf(AccessDenied);
  });

  it('two desks booking the same chair at the same moment: one wins, the other hears the clash (never a 500)', async () => {
    const both = await Promise.all([
      bookAppointment(deps(), desk, patientA, slot({ day: '2026-03-11', time: '09:00' }), meta()),
      bookAppointment(deps(), desk, patientB, slot({ day: '2026-03-11', time: '09:30', providerId: providers[1]!.id }), meta()),
    ]);
    expect(both.filter((r) => r.ok)).to.have.length(1);
    expect((both.find((r) => !r.ok) as { error: string }).error).to.match(/Chair 1 is already booked|booked this time a moment ago/);
  });
});
