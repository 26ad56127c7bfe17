import { incidentSecrets } from '../../src/queries/incidents.queries.js';
import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { generate } from 'otplib';
import { raiseAlert } from '../../src/alerts/alerts.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { noteSecrets } from '../../src/queries/notes.queries.js';
import { planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { NUL_MESSAGE } from '../../src/validation/text.js';
import { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { routeTable } from '../support/routes.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';
import { amendmentRequestSecrets, restrictionSecrets } from '../../src/queries/rights.queries.js';

const NUL = 'Bad\u0000value';

/** Every field name a form of the app reads, each holding a NUL byte. */
const FIELDS = [
  'name', 'title', 'body', 'email', 'password', 'current', 'confirm', 'displayName', 'note', 'q', 'description', 'cdt', 'tooth', 'surfaces', 'fee',
  'insurance', 'phase', 'caseReference', 'operatorEmail', 'hours', 'reason', 'reasonCode', 'justification', 'familyName', 'givenName', 'dateOfBirth', 'dob',
  'phone', 'slug', 'locationName', 'ownerName', 'ownerEmail', 'confirmSlug', 'tailDays', 'fields', 'notice', 'code', 'next', 'handle', 'action', 'decision',
  'step', 'kind', 'status', 'send', 'planId', 'fullName', 'signature', 'versionId', 'slot', 'sessionIdleMinutes', 'mfaPolicy', 'securityContactUserId',
  'patientPurgeGraceDays', 'inactiveAccountDays', 'auditRetentionYears', 'sex', 'address1', 'city', 'region', 'postalCode', 'carrier', 'memberId', 'f_allergies',
];
const body = (token: string) => ({ _csrf: token, ...Object.fromEntries(FIELDS.map((f) => [f, NUL])) });

/** Routes whose request is not a form to fill (ending one's own session; a provider's signed callback). */
const NOT_FORMS = new Set(['POST /p/:slug/sign-out', 'POST /operator/sign-out', 'POST /portal/sign-out', 'POST /hooks/sms/:slug']);

describe('a NUL byte in any text field: a 400 with the form error, never a 500', function () {
  this.timeout(120_000);
  const { t, clock, inPractice } = useStaffApp({ slug: 'nul-bytes' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];

  before(async () => {
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
  });

  it('walks every POST route with NUL in every field: nothing answers 500 or logs an unhandled error', async () => {
    // One record of each kind an `:id` route names, in the owner's own practice.
    const colleague = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['provider'] });
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const ids = { note: randomUUID(), plan: randomUUID(), item: randomUUID(), grant: randomUUID(), review: randomUUID(), reviewItem: randomUUID(), opGrant: randomUUID(), document: randomUUID() };
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('clinical_notes').insert({ id: ids.note, practice_id: p.id, patient_id: patient.id, author_id: owner.id, location_id: p.locationIds[0], status: 'draft', ...(await noteSecrets.seal(pc, ids.note, { body: 'A draft' })) });
      await trx('treatment_plans').insert({ id: ids.plan, practice_id: p.id, patient_id: patient.id, status: 'draft', created_by: owner.id, ...(await planSecrets.seal(pc, ids.plan, { title: 'Plan' })) });
      await trx('treatment_plan_items').insert({ id: ids.item, practice_id: p.id, plan_id: ids.plan, phase: 1, ...(await planItemSecrets.seal(pc, ids.item, { content: { cdt: 'D1110', tooth: null, surfaces: null, description: 'Cleaning', fee: 100, insurance: 0 } })) });
      await trx('access_reviews').insert({ id: ids.review, practice_id: p.id, period: '2026-Q4', created_at: new Date(clock.now()), due_at: new Date(clock.now() + 86_400_000) });
      await trx('access_review_items').insert({ id: ids.reviewItem, practice_id: p.id, review_id: ids.review, user_id: colleague.id, snapshot: JSON.stringify({ displayName: 'C', email: 'c@clinic.example', roles: [], locations: [], lastLoginAt: null, mfa: true, isOwner: false, breakGlassUses: 0 }), flags: [] });
      await trx('patient_documents').insert({ id: ids.document, practice_id: p.id, patient_id: patient.id, kind: 'other', content_type: 'application/pdf', file_id: randomUUID(), byte_size: 10, uploaded_by: owner.id });
    });
    const alert = await inPractice((trx) => raiseAlert(trx, { practiceId: p.id, kind: 'break_glass', severity: 'warning' }));
    const form = (await inPractice((trx) => trx('form_templates').first<{ id: string }>('id'))).id;
    const link = randomUUID();
    await inPractice((trx) => trx('patient_links').insert({ id: link, practice_id: p.id, patient_id: patient.id, tasks: ['uploads'], code_hash: 'a'.repeat(64), created_by: owner.id, expires_at: new Date(clock.now() + 86_400_000) }));
    const op = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'nul-op@platform.example', displayName: 'Nul Op' });
    const request = randomUUID();
    await inPractice((trx) => trx('patient_requests').insert({ id: request, practice_id: p.id, patient_id: patient.id, kind: 'access', received_via: 'phone', received_at: new Date(clock.now()), due_at: new Date(clock.now() + 30 * 86_400_000), recorded_by: owner.id }));
    const amendment = randomUUID();
    await inPractice(async (trx) => trx('record_amendments').insert({ id: amendment, practice_id: p.id, patient_id: patient.id, target_type: 'demographics', target_id: patient.id, requested_at: new Date(clock.now()), ...(await amendmentRequestSecrets.seal(new PracticeCrypto(fx.keyring, trx, p.id), amendment, { requested_change: 'Change' })) }));
    const restriction = randomUUID();
    await inPractice(async (trx) => trx('patient_restrictions').insert({ id: restriction, practice_id: p.id, patient_id: patient.id, kind: 'restriction', decision: 'agreed', decided_by: owner.id, decided_at: new Date(clock.now()), ...(await restrictionSecrets.seal(new PracticeCrypto(fx.keyring, trx, p.id), restriction, { description: 'Victimpatient restriction', refusal_reason: null })) }));
    const vendor = randomUUID();
    const incident = randomUUID();
    const task = randomUUID();
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('vendors').insert({ id: vendor, practice_id: p.id, name: 'Victim Vendor', service: 'Lab', data_seen: 'phi', agreement: 'none' });
      await trx('incidents').insert({ id: incident, practice_id: p.id, kind: 'other', discovered_at: new Date(clock.now()), opened_by: owner.id, ...(await incidentSecrets.seal(pc, incident, { summary: 'Victimpatient incident', reported_by: null, assessment: null })) });
      await trx('incident_tasks').insert({ id: task, practice_id: p.id, incident_id: incident, kind: 'individuals', due_at: new Date(clock.now() + 86_400_000) });
    });
    const appointment = randomUUID();
    await inPractice(async (trx) => {
      const chair = await trx('operatories').first<{ id: string }>('id');
      const kind = await trx('appointment_kinds').first<{ id: string }>('id');
      await trx('appointments').insert({ id: appointment, practice_id: p.id, patient_id: patient.id, location_id: p.locationIds[0], provider_id: owner.id, chair_id: chair!.id, kind_id: kind!.id, starts_at: new Date(clock.now() + 86_400_000), ends_at: new Date(clock.now() + 90_000_000), created_by: owner.id });
    });
    const RECORDS: Record<string, string> = {
      appointments: appointment,
      vendors: vendor, incidents: incident, 'incident-tasks': task,
      restrictions: restriction, 
      'patient-requests': request,
      'record-amendments': amendment,
      users: colleague.id, roles: (await inPractice((trx) => trx('roles').where({ key: 'billing' }).first<{ id: string }>('id'))).id, patients: patient.id, notes: ids.note, plans: ids.plan,
      'plan-items': ids.item, links: link, forms: form, 'form-submissions': randomUUID(), 'access-reviews': ids.review, 'access-review-items': ids.reviewItem,
      'break-glass': randomUUID(), 'operator-access': randomUUID(), documents: ids.document, alerts: alert, practices: p.id, operators: op.id,
    };

    const staffSession = await signIn(built.app, p.slug, owner, clock);
    const staffToken = (await staffSession.form(`/p/${p.slug}/users/new`)).token;
    clock.advance(30_000);
    const opSession = browser(built.app);
    const opPage = await opSession.form('/operator/sign-in');
    await opSession.agent.post('/operator/sign-in').type('form').send({ _csrf: opPage.token, email: 'nul-op@platform.example', password: op.password, code: await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }) });
    const opToken = (await opSession.form('/operator/practices/new')).token;
    const anonymous = browser(built.app);
    const anonToken = (await anonymous.form(`/p/${p.slug}/sign-in`)).token;

    const posts = routeTable(t.current, built.config).filter((r) => r.method === 'POST' && !NOT_FORMS.has(`POST ${r.path}`));
    expect(posts.length).to.be.greaterThan(50);
    const results: string[] = [];
    for (const r of posts) {
      const kind = /\/([a-z-]+)\/:id/.exec(r.path)?.[1];
      if (kind) expect(RECORDS, `add a record for ${r.path}`).to.have.property(kind);
      const url = r.path.replace(':slug', p.slug).replace(':id', kind ? RECORDS[kind]! : '').replace(':token', 'A'.repeat(43)).replace(':code', 'B'.repeat(43));
      const [client, token] = r.access?.kind === 'operator' ? [opSession, opToken] : r.access?.kind === 'permission' || r.access?.kind === 'signed_in' ? [staffSession, staffToken] : [anonymous, anonToken];
      const multipart = r.path.endsWith('/documents') || r.path === '/portal/uploads';
      const req = client.agent.post(url);
      const res = multipart
        ? await Object.entries(body(token)).reduce((q, [k, v]) => q.field(k, v), req).attach('file', Buffer.from('%PDF-1.7\n%%EOF\n'), 'x.pdf')
        : await req.type('form').send(body(token));
      results.push(`${r.path} ${res.status >= 500 ? 'SERVER ERROR' : 'ok'}`);
    }
    expect(results.filter((x) => x.endsWith('SERVER ERROR'))).to.deep.equal([]);
    expect(built.logs.filter((l) => l.level === 50).map((l) => l.msg)).to.deep.equal([]);
  });

  it('the forms a person fills show the error beside the field and keep nothing', async () => {
    const s = await signIn(built.app, p.slug, owner, clock);
    const counts = () => inPractice(async (trx) => { const out: number[] = []; for (const tb of ['roles', 'form_template_versions', 'patients', 'users']) out.push(Number((await trx(tb).count<{ n: string }[]>({ n: '*' }))[0]!.n)); return out; });
    const before = await counts();
    const cases: [string, string, Record<string, string | string[]>][] = [
      [`/p/${p.slug}/roles/new`, `/p/${p.slug}/roles`, { name: 'Front\u0000desk two', description: 'x', permissions: 'patients.read' }],
      [`/p/${p.slug}/forms/new`, `/p/${p.slug}/forms`, { title: 'Intake\u0000', fields: 'Allergies | text | optional', notice: 'Thanks' }],
      [`/p/${p.slug}/users/new`, `/p/${p.slug}/users`, { displayName: 'New\u0000Person', email: 'new@clinic.example', roleIds: [] }],
      [`/p/${p.slug}/patients/new`, `/p/${p.slug}/patients`, { givenName: 'Pat\u0000', familyName: 'Nullbyte', dateOfBirth: '1980-01-02', sex: 'female', phone: '(555) 010-0000', preferredContact: 'phone', locationId: p.locationIds[0]! }],
    ];
    for (const [page, action, fields] of cases) {
      const f = await s.form(page);
      const res = await s.agent.post(action).type('form').send({ _csrf: f.token, ...fields });
      expect(res.status, action).to.equal(400);
      expect(res.text, action).to.include('invisible control character');
      // The page is the form again, with a working token.
      expect(/name="_csrf" value="([^"]+)"/.exec(res.text)?.[1], action).to.be.a('string').and.not.equal('');
    }
    const guest = browser(built.app);
    const reset = await guest.form(`/p/${p.slug}/password-reset`);
    const r = await guest.agent.post(`/p/${p.slug}/password-reset`).type('form').send({ _csrf: reset.token, email: 'someone\u0000@clinic.example' });
    expect(r.status).to.be.within(400, 499);
    const signInPage = await guest.form(`/p/${p.slug}/sign-in`);
    expect((await guest.agent.post(`/p/${p.slug}/sign-in`).type('form').send({ _csrf: signInPage.token, email: 'a\u0000@b.example', password: 'x' })).status).to.equal(400);
    expect(await counts()).to.deep.equal(before);
    expect(NUL_MESSAGE).to.include('invisible control character');
  });
});
