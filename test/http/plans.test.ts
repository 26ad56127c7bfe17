import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import type { Knex } from 'knex';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { planContentHash, type ItemContent } from '../../src/services/patients/plans.service.js';
import { rememberPhi } from '../support/phi-scan.js';

describe('treatment plans: totals on the server, present and accept, an accepted plan cannot change', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'plans-http' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let coordinator: BuiltStaff;
  let patientId: string;
  let built: StaffApp['built'];
  const plansPath = () => `/p/${p.slug}/patients/${patientId}/plans`;

  before(async () => {
    rememberPhi('Phase 1 — restorative', 'Composite, 3 surfaces', 'Adult prophylaxis');
    coordinator = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['treatment_coordinator'] });
    patientId = (await buildPatient(t.current.db, fx.keyring, p)).id;
  });

  it('builds a plan in phases; totals come from the items, never from the form; bad items are refused with the reason', async () => {
    const b = await signIn(built.app, p.slug, coordinator, clock);
    let page = await b.form(plansPath());
    expect((await b.agent.post(plansPath()).type('form').send({ _csrf: page.token, title: 'Phase 1 — restorative' })).status).to.equal(303);
    const plan = await inPractice((trx) => trx('treatment_plans').where({ patient_id: patientId }).first('id'));
    const add = (item: Record<string, string>) => b.agent.post(`/p/${p.slug}/plans/${plan.id}/items`).type('form').send({ _csrf: page.token, ...item });
    expect((await add({ phase: '1', cdt: 'd2392', tooth: '14', surfaces: 'mod', description: 'Composite, 3 surfaces', fee: '$1,250.00', insurance: '800', total: '1' })).status).to.equal(303);
    expect((await add({ phase: '2', cdt: 'D1110', tooth: '', surfaces: '', description: 'Adult prophylaxis', fee: '95.50', insurance: '95.50' })).status).to.equal(303);
    for (const [item, message] of [
      [{ cdt: 'X123' }, 'A CDT code is D followed by four digits'],
      [{ fee: '100', insurance: '150' }, 'cannot be more than the fee'],
      [{ tooth: '33' }, 'Tooth: 1–32'],
      [{ fee: 'ten' }, 'Fee: enter an amount in dollars'],
    ] as const) {
      const res = await add({ phase: '1', cdt: 'D2391', tooth: '3', surfaces: 'O', description: 'x', fee: '100', insurance: '0', ...item });
      expect(res.status, JSON.stringify(item)).to.equal(400);
      expect(res.text).to.include(message);
    }
    page = await b.form(plansPath());
    expect(page.text).to.include('$1,250.00').and.include('$450.00').and.include('$1,345.50').and.include('$895.50');
    expect(await inPractice((trx) => trx('treatment_plan_items').where({ plan_id: plan.id }).count<{ n: string }[]>({ n: '*' }))).to.deep.equal([{ n: '2' }]);
    const raw = await inPractice((trx) => trx('treatment_plan_items').where({ plan_id: plan.id }).select('content'));
    expect(JSON.stringify(raw)).to.not.include('D2392').and.not.include('Composite');
  });

  it('accepting fixes the hash of the content; then nothing about the plan can change, in the app or the database', async () => {
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(plansPath());
    const plan = await inPractice((trx) => trx('treatment_plans').where({ patient_id: patientId }).first('id'));
    // The decision buttons carry the content hash of the plan as the page showed it.
    const shown = async () => /name="planHash" value="([0-9a-f]{64})"/.exec((await b.agent.get(plansPath())).text)?.[1];
    const step = async (s: string, planHash?: string) => b.agent.post(`/p/${p.slug}/plans/${plan.id}/status`).type('form').send({ _csrf: page.token, step: s, ...((planHash ?? (await shown())) ? { planHash: planHash ?? (await shown()) } : {}) });
    const early = await step('accept');
    expect(early.status).to.equal(409);
    expect(early.text).to.include('Present the plan');
    expect((await step('present')).status).to.equal(303);
    const stale = await step('accept', 'f'.repeat(64));
    expect(stale.status, 'a plan changed since the page was loaded is not accepted blind').to.equal(409);
    expect(stale.text).to.include('This plan changed since the page was loaded');
    expect((await inPractice((trx) => trx('treatment_plans').where({ id: plan.id }).first('status'))).status).to.equal('presented');
    expect((await step('accept')).status).to.equal(303);

    const stored = await inPractice((trx) => trx('treatment_plans').where({ id: plan.id }).first('status', 'accepted_hash', 'title'));
    expect(stored.status).to.equal('accepted');
    const expected = await inPractice(async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      const title = (await planSecrets.open(pc, { id: plan.id, title: stored.title })).title!;
      const items = await trx('treatment_plan_items').where({ plan_id: plan.id }).select('id', 'phase', 'content');
      const opened = await Promise.all(items.map(async (i: { id: string; phase: number; content: Buffer }) => ({ id: i.id, phase: i.phase, ...((await planItemSecrets.open(pc, i)).content as ItemContent) })));
      return planContentHash(plan.id, title, opened);
    });
    expect(stored.accepted_hash).to.equal(expected);

    const more = await b.agent.post(`/p/${p.slug}/plans/${plan.id}/items`).type('form').send({ _csrf: page.token, phase: '1', cdt: 'D2740', tooth: '3', surfaces: '', description: 'Crown', fee: '1200', insurance: '0' });
    expect(more.status).to.equal(409);
    expect(more.text).to.include('can no longer change');
    const itemId = (await inPractice((trx) => trx('treatment_plan_items').where({ plan_id: plan.id }).first('id'))).id;
    expect((await b.agent.post(`/p/${p.slug}/plan-items/${itemId}/delete`).type('form').send({ _csrf: page.token })).status).to.equal(409);
    expect((await step('decline')).status).to.equal(409);

    const attempts: ((trx: Knex.Transaction) => Promise<unknown>)[] = [
      async (trx) => trx('treatment_plan_items').where({ id: itemId }).delete(),
      async (trx) => trx('treatment_plans').where({ id: plan.id }).update({ status: 'draft', accepted_hash: null, decided_at: null, decided_by: null }),
      async (trx) => trx('treatment_plan_items').insert({ id: '00000000-0000-4000-8000-00000000abcd', practice_id: p.id, plan_id: plan.id, phase: 1, content: Buffer.from('x') }),
    ];
    for (const sql of attempts) {
      let message = '';
      await inPractice(sql).catch((e: Error) => (message = e.message));
      expect(message).to.match(/decided treatment plan cannot be changed/);
    }
    const page2 = await b.agent.get(plansPath());
    expect(page2.text).to.include('(matches)');
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'accept', patient_id: patientId })).to.have.length(1);
  });

  it('printing is audited; billing reads plans but cannot change them; front desk cannot see them', async () => {
    const plan = await inPractice((trx) => trx('treatment_plans').where({ patient_id: patientId }).first('id'));
    const billing = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['billing'] });
    const b = await signIn(built.app, p.slug, billing, clock);
    const printed = await b.agent.get(`/p/${p.slug}/plans/${plan.id}/print`);
    expect(printed.status).to.equal(200);
    expect(printed.text).to.include('$1,345.50').and.include('Plan total');
    // The letterhead: the practice, the patient's location with its address and phone.
    expect(printed.text).to.match(/<header class="letterhead">\s*<p><strong>Practice plans-http<\/strong> · Practice plans-http Main<\/p>/);
    expect(printed.text).to.include('1 Example Way').and.include('(555) 010-0000').and.include('data-print');
    expect((await t.current.owner('audit_events').where({ practice_id: p.id, action: 'print', actor_id: billing.id }))[0]).to.deep.include({ patient_id: patientId });
    const page = await b.form(plansPath());
    expect(page.status).to.equal(200);
    expect(page.text).to.not.include('Start a plan');
    expect((await b.agent.post(plansPath()).type('form').send({ _csrf: page.token, title: 'Nope' })).status).to.equal(404);

    const desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(plansPath())).status).to.equal(404);
    expect((await d.agent.get(`/p/${p.slug}/plans/${plan.id}/print`)).status).to.equal(404);
  });

  it('an empty plan cannot be presented: the button waits for an item, and a direct request is refused with the reason', async () => {
    const b = await signIn(built.app, p.slug, coordinator, clock);
    const page = await b.form(plansPath());
    const before = await inPractice((trx) => trx('treatment_plans').where({ patient_id: patientId }).pluck('id'));
    expect((await b.agent.post(plansPath()).type('form').send({ _csrf: page.token, title: 'Empty plan' })).status).to.equal(303);
    const plan = await inPractice((trx) => trx('treatment_plans').where({ patient_id: patientId }).whereNotIn('id', before).first('id'));
    const shown = await b.agent.get(plansPath());
    expect(shown.text).to.include('Add an item before presenting the plan.');
    const refused = await b.agent.post(`/p/${p.slug}/plans/${plan.id}/status`).type('form').send({ _csrf: page.token, step: 'present' });
    expect(refused.status).to.equal(409);
    expect(refused.text).to.include('Add at least one item before presenting the plan.');
    expect((await inPractice((trx) => trx('treatment_plans').where({ id: plan.id }).first('status'))).status).to.equal('draft');
  });
});
