import { incidentSecrets } from '../../src/queries/incidents.queries.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { DEFAULT_ROLES } from '../../src/permissions.js';
import { noteSecrets } from '../../src/queries/notes.queries.js';
import { planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { breakGlassSecrets } from '../../src/queries/patients.queries.js';
import { submissionSecrets } from '../../src/queries/forms.queries.js';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { raiseAlert } from '../../src/alerts/alerts.js';
import { routeTable } from '../support/routes.js';
import { buildTestApp } from '../support/app.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, testClock } from '../support/staff.js';
import { rememberPhi } from '../support/phi-scan.js';
import { amendmentRequestSecrets, restrictionSecrets } from '../../src/queries/rights.queries.js';

/** Pages whose policy adds "the owner only" to the route's permission (policies/practice.policy.ts). */
const OWNER_ONLY = new Set(['/p/:slug/settings/security']);

describe('authorization over HTTP', () => {
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let a: BuiltPractice;
  let b: BuiltPractice;
  let built: ReturnType<typeof buildTestApp>;
  const inPractice = <T>(p: BuiltPractice, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, fn);

  before(async () => {
    rememberPhi('Victimpatient');
    fx = await buildCryptoFixture(t.current);
    a = await buildPractice(t.current.owner, { slug: 'authz-a' });
    b = await buildPractice(t.current.owner, { slug: 'authz-b' });
    built = buildTestApp(t.current, {}, { keyring: fx.keyring, clock: clock.now });
  });
  after(() => fx?.cleanup());

  it('every default role × every permission-guarded page: allowed exactly as the catalogue says, else not found', async () => {
    const pages = routeTable(t.current, built.config).filter((r) => r.method === 'GET' && r.access?.kind === 'permission' && (r.path.match(/:/g) ?? []).length === 1);
    expect(pages.length).to.be.greaterThanOrEqual(4);
    const got: string[] = [];
    const want: string[] = [];
    for (const role of DEFAULT_ROLES) {
      const user = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, a, role.key === 'owner' ? { owner: true } : { roles: [role.key] });
      const s = await signIn(built.app, a.slug, user, clock);
      for (const page of pages) {
        const needed = page.access!.kind === 'permission' ? page.access!.permission : undefined;
        const res = await s.agent.get(page.path.replace(':slug', a.slug));
        got.push(`${role.key} GET ${page.path} ${res.status}`);
        want.push(`${role.key} GET ${page.path} ${role.permissions.includes(needed!) && (!OWNER_ONLY.has(page.path) || role.key === 'owner') ? 200 : 404}`);
      }
    }
    expect(got).to.deep.equal(want);
  });

  it('cross-tenant sweep: every route taking an id, given practice B\u2019s id by A\u2019s owner → not found, no data, audited, nothing changed', async () => {
    const ownerA = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, a, { owner: true });
    const victim = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, b, { roles: ['front_desk'], name: 'Victor Victim' });
    const roleB = await inPractice(b, (trx) => trx('roles').where({ key: 'billing' }).first<{ id: string }>('id'));
    await inPractice(b, (trx) => trx('roles').where({ id: roleB.id }).update({ name: 'Billing B secret' }));
    const victimEmail = victim.email;
    const patientB = await buildPatient(t.current.db, fx.keyring, b, { familyName: 'Victimpatient' });
    const providerB = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, b, { roles: ['provider'] });
    const grantB = randomUUID();
    const operator = await createOperator(t.current.db.knex, fx.keyring.provider, { email: `op-${grantB.slice(0, 8)}@platform.example`, displayName: 'Op' });
    const operatorGrantB = randomUUID();
    await inPractice(b, async (trx) => {
      await trx('operator_grants').insert({ id: operatorGrantB, practice_id: b.id, operator_id: operator.id, case_reference: 'CASE-1', granted_by: providerB.id, granted_at: new Date(clock.now()), expires_at: new Date(clock.now() + 3_600_000) });
      const sealed = await breakGlassSecrets.seal(new PracticeCrypto(fx.keyring, trx, b.id), grantB, { justification: 'Victimpatient needed care' });
      await trx('break_glass_grants').insert({ id: grantB, practice_id: b.id, user_id: providerB.id, patient_id: patientB.id, reason_code: 'emergency', granted_at: new Date(clock.now()), expires_at: new Date(clock.now() + 3_600_000), ...sealed });
    });
    // The record each `:id` route names, by the path segment before it. A new kind of id route must be added here.
    const documentB = randomUUID();
    await inPractice(b, (trx) => trx('patient_documents').insert({ id: documentB, practice_id: b.id, patient_id: patientB.id, kind: 'other', content_type: 'application/pdf', file_id: randomUUID(), byte_size: 10, uploaded_by: providerB.id }));
    const noteB = randomUUID();
    await inPractice(b, async (trx) => {
      const sealed = await noteSecrets.seal(new PracticeCrypto(fx.keyring, trx, b.id), noteB, { body: 'Victimpatient note' });
      await trx('clinical_notes').insert({ id: noteB, practice_id: b.id, patient_id: patientB.id, author_id: providerB.id, location_id: b.locationIds[0], status: 'draft', ...sealed });
    });
    const planB = randomUUID();
    const itemB = randomUUID();
    await inPractice(b, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, b.id);
      await trx('treatment_plans').insert({ id: planB, practice_id: b.id, patient_id: patientB.id, status: 'draft', created_by: providerB.id, ...(await planSecrets.seal(pc, planB, { title: 'Victimpatient plan' })) });
      await trx('treatment_plan_items').insert({ id: itemB, practice_id: b.id, plan_id: planB, phase: 1, ...(await planItemSecrets.seal(pc, itemB, { content: { cdt: 'D1110', tooth: null, surfaces: null, description: 'Victimpatient cleaning', fee: 100, insurance: 0 } })) });
    });
    const linkB = randomUUID();
    await inPractice(b, (trx) => trx('treatment_plans').where({ id: planB }).update({ status: 'presented', presented_at: new Date(clock.now()) }));
    await inPractice(b, (trx) => trx('patient_links').insert({ id: linkB, practice_id: b.id, patient_id: patientB.id, tasks: ['plan_review'], plan_id: planB, code_hash: 'a'.repeat(64), created_by: providerB.id, expires_at: new Date(clock.now() + 86_400_000) }));
    const formB = (await inPractice(b, (trx) => trx('form_templates').where({ key: 'consent_to_treat' }).first<{ id: string }>('id'))).id;
    const submissionB = randomUUID();
    await inPractice(b, async (trx) => {
      const version = await trx('form_template_versions').where({ template_id: formB }).first<{ id: string }>('id');
      const sealed = await submissionSecrets.seal(new PracticeCrypto(fx.keyring, trx, b.id), submissionB, { content: { answers: { consent: true }, signer: { fullName: 'Victimpatient Signer', signature: 'V', drawing: null } } });
      await trx('form_submissions').insert({ id: submissionB, practice_id: b.id, patient_id: patientB.id, template_version_id: version!.id, link_id: linkB, content_hash: 'b'.repeat(64), submitted_at: new Date(clock.now()), ...sealed });
    });
    const reviewB = randomUUID();
    const reviewItemB = randomUUID();
    await inPractice(b, async (trx) => {
      await trx('access_reviews').insert({ id: reviewB, practice_id: b.id, period: '2026-Q4', created_at: new Date(clock.now()), due_at: new Date(clock.now() + 86_400_000) });
      await trx('access_review_items').insert({ id: reviewItemB, practice_id: b.id, review_id: reviewB, user_id: victim.id, snapshot: JSON.stringify({ displayName: 'Victor Victim' }), flags: [] });
    });
    const requestB = randomUUID();
    await inPractice(b, (trx) => trx('patient_requests').insert({ id: requestB, practice_id: b.id, patient_id: patientB.id, kind: 'access', received_via: 'phone', received_at: new Date(clock.now()), due_at: new Date(clock.now() + 30 * 86_400_000), recorded_by: providerB.id }));
    const amendmentB = randomUUID();
    await inPractice(b, async (trx) => trx('record_amendments').insert({ id: amendmentB, practice_id: b.id, patient_id: patientB.id, target_type: 'demographics', target_id: patientB.id, requested_at: new Date(clock.now()), ...(await amendmentRequestSecrets.seal(new PracticeCrypto(fx.keyring, trx, b.id), amendmentB, { requested_change: 'Victimpatient change' })) }));
    const exportB = randomUUID();
    await inPractice(b, (trx) => trx('practice_exports').insert({ id: exportB, practice_id: b.id, requested_by: providerB.id, scope: 'practice', total: 1 }));
    const alertB = await inPractice(b, (trx) => raiseAlert(trx, { practiceId: b.id, kind: 'signin_lockout', severity: 'warning', details: { target_type: 'user', target_id: victim.id, count: 5 } }));
    const restrictionB = randomUUID();
    await inPractice(b, async (trx) => trx('patient_restrictions').insert({ id: restrictionB, practice_id: b.id, patient_id: patientB.id, kind: 'restriction', decision: 'agreed', decided_by: providerB.id, decided_at: new Date(clock.now()), ...(await restrictionSecrets.seal(new PracticeCrypto(fx.keyring, trx, b.id), restrictionB, { description: 'Victimpatient restriction', refusal_reason: null })) }));
    const vendorB = randomUUID();
    const incidentB = randomUUID();
    const taskB = randomUUID();
    await inPractice(b, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, b.id);
      await trx('vendors').insert({ id: vendorB, practice_id: b.id, name: 'Victim Vendor', service: 'Lab', data_seen: 'phi', agreement: 'none' });
      await trx('incidents').insert({ id: incidentB, practice_id: b.id, kind: 'other', discovered_at: new Date(clock.now()), opened_by: providerB.id, ...(await incidentSecrets.seal(pc, incidentB, { summary: 'Victimpatient incident', reported_by: null, assessment: null })) });
      await trx('incident_tasks').insert({ id: taskB, practice_id: b.id, incident_id: incidentB, kind: 'individuals', due_at: new Date(clock.now() + 86_400_000) });
    });
    const appointmentB = randomUUID();
    await inPractice(b, async (trx) => {
      const chair = await trx('operatories').first<{ id: string }>('id');
      const kind = await trx('appointment_kinds').first<{ id: string }>('id');
      await trx('appointments').insert({ id: appointmentB, practice_id: b.id, patient_id: patientB.id, location_id: b.locationIds[0], provider_id: providerB.id, chair_id: chair!.id, kind_id: kind!.id, starts_at: new Date(clock.now() + 86_400_000), ends_at: new Date(clock.now() + 90_000_000), created_by: providerB.id });
    });
    const RECORDS: Record<string, string> = {
      appointments: appointmentB,
      vendors: vendorB, incidents: incidentB, 'incident-tasks': taskB,
      restrictions: restrictionB, 
      alerts: alertB,
      users: victim.id, roles: roleB.id, patients: patientB.id, 'break-glass': grantB, 'operator-access': operatorGrantB, documents: documentB, notes: noteB, plans: planB, 'plan-items': itemB, links: linkB,
      forms: formB, 'form-submissions': submissionB, 'access-reviews': reviewB, 'access-review-items': reviewItemB, exports: exportB, 'patient-requests': requestB, 'record-amendments': amendmentB,
    };
    const session = await signIn(built.app, a.slug, ownerA, clock);
    const token = (await session.form(`/p/${a.slug}/users/new`)).token;
    const idRoutes = routeTable(t.current, built.config).filter((r) => r.path.startsWith('/p/:slug/') && r.path.includes('/:id'));
    expect(idRoutes.length).to.be.greaterThanOrEqual(8);
    const auditBefore = await t.current.owner('audit_events').where({ practice_id: b.id }).count<{ n: string }[]>({ n: '*' });
    for (const r of idRoutes) {
      const kind = /\/([a-z-]+)\/:id/.exec(r.path)![1]!;
      expect(RECORDS, `add ${r.path} to the cross-tenant sweep`).to.have.property(kind);
      const url = r.path.replace(':slug', a.slug).replace(':id', RECORDS[kind]!);
      const res =
        r.method === 'GET'
          ? await session.agent.get(url)
          : r.path.endsWith('/documents')
            ? await session.agent.post(url).field('_csrf', token).field('kind', 'other').attach('file', Buffer.from('%PDF-1.7\n%%EOF\n'), 'x.pdf')
            : await session.agent.post(url).type('form').send({ _csrf: token, name: 'Hacked', note: 'Hacked note', permissions: [], roleIds: [], body: 'Hacked', action: 'sign', title: 'Hacked', fields: 'Hacked | text | optional', notice: 'x', decision: 'revoke', step: 'accept', phase: '1', cdt: 'D1110', description: 'x', fee: '1', insurance: '0' });
      expect(res.status, `${r.method} ${r.path}`).to.equal(404);
      expect(res.text).to.not.include(victimEmail).and.not.include('Victor').and.not.include('Billing B secret').and.not.include('Victimpatient');
      const denial = await t.current.owner('audit_events').where({ practice_id: a.id, action: 'permission_denied', actor_id: ownerA.id, resource_id: RECORDS[kind] }).count<{ n: string }[]>({ n: '*' });
      expect(Number(denial[0]!.n), `${r.method} ${r.path} audited`).to.be.greaterThan(0);
    }
    const after = await inPractice(b, (trx) => trx('users').where({ id: victim.id }).first('status', 'sessions_valid_after'));
    expect(after).to.deep.equal({ status: 'active', sessions_valid_after: null });
    expect((await inPractice(b, (trx) => trx('roles').where({ id: roleB.id }).first('name'))).name).to.equal('Billing B secret');
    expect(await inPractice(b, (trx) => trx('break_glass_grants').where({ id: grantB }).first('reviewed_at'))).to.deep.equal({ reviewed_at: null });
    expect(await inPractice(b, (trx) => trx('break_glass_grants').count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '1' }]);
    expect(await inPractice(b, (trx) => trx('operator_grants').where({ id: operatorGrantB }).first('revoked_at'))).to.deep.equal({ revoked_at: null });
    expect(await inPractice(b, (trx) => trx('treatment_plans').where({ id: planB }).first('status'))).to.deep.equal({ status: 'presented' });
    expect(await inPractice(b, (trx) => trx('patient_links').where({ id: linkB }).first('revoked_at'))).to.deep.equal({ revoked_at: null });
    expect(await inPractice(b, (trx) => trx('form_template_versions').where({ template_id: formB }).pluck('version'))).to.deep.equal([1]);
    expect(await inPractice(b, (trx) => trx('form_submissions').where({ id: submissionB }).first('reviewed_at'))).to.deep.equal({ reviewed_at: null });
    expect(await inPractice(b, (trx) => trx('access_review_items').where({ id: reviewItemB }).first('decision'))).to.deep.equal({ decision: null });
    expect(await inPractice(b, (trx) => trx('access_reviews').where({ id: reviewB }).first('signed_off_at'))).to.deep.equal({ signed_off_at: null });
    expect(await inPractice(b, (trx) => trx('patients').where({ id: patientB.id }).first('deletion_requested_at', 'legal_hold_at'))).to.deep.equal({ deletion_requested_at: null, legal_hold_at: null });
    expect(await inPractice(b, (trx) => trx('treatment_plan_items').where({ plan_id: planB }).pluck('id'))).to.deep.equal([itemB]);
    expect(await inPractice(b, (trx) => trx('clinical_notes').where({ id: noteB }).first('status'))).to.deep.equal({ status: 'draft' });
    expect(await inPractice(b, (trx) => trx('clinical_note_amendments').count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '0' }]);
    expect(await inPractice(b, (trx) => trx('patient_documents').where({ patient_id: patientB.id }).select('id', 'deleted_at'))).to.deep.equal([{ id: documentB, deleted_at: null }]);
    expect(await inPractice(b, (trx) => trx('security_alerts').where({ id: alertB }).first('acknowledged_at'))).to.deep.equal({ acknowledged_at: null });
    expect(await t.current.owner('audit_events').where({ practice_id: b.id }).count<{ n: string }[]>({ n: '*' })).to.deep.equal(auditBefore);
  });

  it('a malformed id is the same not-found page', async () => {
    const ownerA = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, a, { owner: true });
    const s = await signIn(built.app, a.slug, ownerA, clock);
    for (const url of [`/p/${a.slug}/users/not-a-uuid`, `/p/${a.slug}/roles/1%20OR%201=1`]) expect((await s.agent.get(url)).status, url).to.equal(404);
  });

  it('a session of practice A is not signed in at practice B', async () => {
    const ownerA = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, a, { owner: true });
    const s = await signIn(built.app, a.slug, ownerA, clock);
    const res = await s.agent.get(`/p/${b.slug}/users`);
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal(`/p/${b.slug}/sign-in`);
  });
});
