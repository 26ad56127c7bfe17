import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { createHash, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { submissionSecrets } from '../../src/queries/forms.queries.js';
import { breakGlassSecrets } from '../../src/queries/patients.queries.js';
import { planSecrets } from '../../src/queries/plans.queries.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

describe('home page: today’s work for each role', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'home-http', locations: ['North', 'South'] }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let built: StaffApp['built'];
  const staff: Record<string, BuiltStaff> = {};
  const names: Record<string, string> = {};

  before(async () => {
    const deps = { keyring: fx.keyring, now: clock.now };
    staff.frontDesk = await buildStaff(t.current, deps, p, { roles: ['front_desk'] });
    staff.southDesk = await buildStaff(t.current, deps, p, { roles: ['front_desk'], locations: [p.locationIds[1]!] });
    staff.coordinator = await buildStaff(t.current, deps, p, { roles: ['treatment_coordinator'] });
    staff.billing = await buildStaff(t.current, deps, p, { roles: ['billing'] });
    staff.manager = await buildStaff(t.current, deps, p, { roles: ['office_manager'] });

    // North: a form waiting for review, a presented plan, a locked link. A reviewed form and a revoked locked link wait for nobody.
    const north = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Northwaite', locationId: p.locationIds[0] });
    const reviewedOnly = await buildPatient(t.current.db, fx.keyring, p, { familyName: 'Doneford', locationId: p.locationIds[0] });
    names.north = north.familyName;
    names.northId = north.id;
    names.done = reviewedOnly.familyName;
    const now = new Date(clock.now());
    await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      const version = await trx('form_template_versions as v').join('form_templates as t', 't.id', 'v.template_id').where('t.key', 'medical_history').first('v.id');
      for (const [patientId, reviewed] of [[north.id, false], [reviewedOnly.id, true]] as const) {
        const id = randomUUID();
        await trx('form_submissions').insert({
          id, practice_id: p.id, patient_id: patientId, template_version_id: version.id, link_id: randomUUID(), submitted_at: now,
          content_hash: createHash('sha256').update(id).digest('hex'), ...(await submissionSecrets.seal(pc, id, { content: { answers: {} } })),
          ...(reviewed ? { reviewed_by: staff.manager!.id, reviewed_at: now } : {}),
        });
      }
      const planId = randomUUID();
      await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: north.id, status: 'presented', presented_at: now, created_by: staff.coordinator!.id, ...(await planSecrets.seal(pc, planId, { title: 'Crowns' })) });
      const link = (revoked: boolean) => ({ id: randomUUID(), practice_id: p.id, patient_id: north.id, code_hash: randomUUID().replace(/-/g, '').repeat(2), tasks: ['uploads'], form_template_ids: [], created_by: staff.frontDesk!.id, expires_at: new Date(clock.now() + 86_400_000), failed_attempts: 5, locked_at: now, revoked_at: revoked ? now : null });
      await trx('patient_links').insert([link(false), link(true)]);
      const grantId = randomUUID();
      await trx('break_glass_grants').insert({ id: grantId, practice_id: p.id, user_id: staff.southDesk!.id, patient_id: north.id, reason_code: 'emergency', granted_at: now, expires_at: new Date(clock.now() + 3_600_000), ...(await breakGlassSecrets.seal(pc, grantId, { justification: 'Toothache, North closed' })) });
    });
  });

  async function home(who: BuiltStaff): Promise<string> {
    const b = await signIn(built.app, p.slug, who, clock);
    const res = await b.agent.get(`/p/${p.slug}/home`);
    expect(res.status).to.equal(200);
    return res.text;
  }

  it('the front desk sees the form to review and the locked link, each naming the patient and leading to the work', async () => {
    const page = await home(staff.frontDesk!);
    expect(page).to.include('Forms to review').and.include('One form waits for review.');
    expect(page).to.include('Locked patient links').and.include('One link is locked');
    expect(page).to.include(names.north).and.not.include(names.done);
    expect(page).to.match(/href="\/p\/home-http\/form-submissions\/[0-9a-f-]{36}"/);
    expect(page).to.include(`/p/home-http/patients/`).and.include('/links"');
    expect(page, 'plans are not the front desk’s work').to.not.include('Plans presented');
    expect(page, 'the staff header names the practice').to.include('<span class="header-practice">Practice home-http</span>');
    expect(page).to.not.include('security alert');
  });

  it('each name shown is an audited read; someone at another location sees nothing of North’s patients', async () => {
    const before = await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: staff.southDesk!.id, action: 'list' }).count<{ n: string }[]>({ n: '*' });
    const page = await home(staff.southDesk!);
    expect(page).to.not.include(names.north);
    expect(page).to.include('Forms to review').and.include('Nothing waiting.');
    const afterCount = await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: staff.southDesk!.id, action: 'list' }).count<{ n: string }[]>({ n: '*' });
    expect(afterCount[0]!.n).to.equal(before[0]!.n);

    await home(staff.frontDesk!);
    const reads = await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: staff.frontDesk!.id, action: 'list', resource_type: 'patient' }).pluck('patient_id');
    expect([...new Set(reads)]).to.deep.equal([names.northId]);
  });

  it('the treatment coordinator sees the plan waiting for the patient; billing sees plans but no forms or links', async () => {
    const coordinator = await home(staff.coordinator!);
    expect(coordinator).to.include('Plans presented and waiting').and.include('One plan waits').and.include(names.north);
    expect(coordinator).to.match(/href="\/p\/home-http\/patients\/[0-9a-f-]{36}\/plans"/);
    const billing = await home(staff.billing!);
    expect(billing).to.include('Plans presented and waiting').and.not.include('Forms to review').and.not.include('Locked patient links');
  });

  it('the office manager also sees the open alerts and the emergency access to review', async () => {
    await inPractice((trx) => trx('security_alerts').insert({ id: randomUUID(), practice_id: p.id, kind: 'dob_lockout', severity: 'warning', created_at: new Date(clock.now()) }));
    const page = await home(staff.manager!);
    expect(page).to.include('One open security alert.');
    expect(page).to.include('One emergency access to review.').and.include('href="/p/home-http/break-glass"');
  });
});
