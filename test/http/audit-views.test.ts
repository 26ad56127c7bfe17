import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { generate } from 'otplib';
import { audit } from '../../src/audit/record.js';
import { createLogger } from '../../src/config/logger.js';
import { MemoryTransport } from '../support/mail.js';
import { auditVerifyFullJob } from '../../src/jobs/audit-verify.job.js';
import { runJob } from '../../src/jobs/scheduler.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';
import { tamperAsSuperuser } from '../support/superuser.js';

describe('audit log views: search, paging, CSV export, chain status', () => {
  const { t, clock } = useStaffApp({ slug: 'audit-views' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];
  let patientId: string;
  const events = (where: Record<string, unknown>) => t.current.owner('audit_events').where({ practice_id: p.id, ...where }).select('action', 'patient_id', 'details', 'outcome', 'actor_id');

  before(async () => {
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true, name: '=HYPERLINK("http://evil.example")' });
    patientId = (await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Ottilie', familyName: 'Brackenridge', phone: '(555) 010-6262' })).id;
    // 60 reads of one patient by the owner (as the chart will write them), then a denied one.
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      for (let i = 0; i < 60; i++) await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: owner.id }, action: 'view', resource: { type: 'patient', id: patientId }, patientId, outcome: 'allowed' });
      await audit.record(trx, { practiceId: p.id, actor: { kind: 'user', id: owner.id }, action: 'permission_denied', patientId, outcome: 'denied' });
    });
  });

  it('searches by patient, action and outcome, pages without overlap, and audits the search with the patient id', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const first = await b.agent.get(`/p/${p.slug}/audit?patient=${patientId}&action=view`);
    expect(first.status).to.equal(200);
    const seen1 = [...first.text.matchAll(/<td>Opened a record<\/td>/g)].length;
    expect(seen1).to.equal(50);
    const next = /href="([^"]+before=\d+)"/.exec(first.text)?.[1]?.replace(/&amp;/g, '&');
    expect(next, 'a link to older events').to.be.a('string');
    const second = await b.agent.get(next!);
    expect([...second.text.matchAll(/<td>Opened a record<\/td>/g)].length).to.equal(10);
    expect(second.text).to.not.include('before=');

    const denied = await b.agent.get(`/p/${p.slug}/audit?outcome=denied&patient=${patientId}`);
    expect(denied.text).to.include('<td>Refused: no permission</td>').and.not.include('<td>Opened a record</td>');
    // Names, not ids: reading a name is itself an audited PHI read (one `list` event per patient shown).
    expect(first.text).to.include('Brackenridge, Ottilie').and.not.include(`>${patientId}<`);
    expect((await events({ action: 'list', actor_id: owner.id, patient_id: patientId })).length).to.be.greaterThanOrEqual(3);

    const searches = await events({ action: 'search', actor_id: owner.id });
    expect(searches.length).to.be.greaterThanOrEqual(3);
    expect(searches.filter((e: { patient_id: string }) => e.patient_id === patientId).length).to.equal(3);
  });

  it('the patient to filter by is found by name (POST, audited like any patient search) and picked from the results', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const page = await b.form(`/p/${p.slug}/audit`);
    const found = await b.agent.post(`/p/${p.slug}/audit/patients`).type('form').send({ _csrf: page.token, q: 'ottilie brack' });
    expect(found.status).to.equal(200);
    expect(found.text).to.include(`href="/p/${p.slug}/audit?patient=${patientId}">Brackenridge, Ottilie</a>`).and.include('•••-•••-6262');
    expect((await events({ action: 'search', actor_id: owner.id, patient_id: patientId })).some((e: { details: unknown }) => e.details === null || typeof e.details === 'object')).to.equal(true);
    const none = await b.agent.post(`/p/${p.slug}/audit/patients`).type('form').send({ _csrf: page.token, q: 'x' });
    expect(none.status).to.equal(400);
    expect(none.text).to.match(/<p class="field-error" id="f-find-err">Type at least two characters/);
    const picked = await b.agent.get(`/p/${p.slug}/audit?patient=${patientId}`);
    expect(picked.text).to.match(/<p class="chosen"><strong>Brackenridge, Ottilie<\/strong>/);
  });

  it('bad filters are a 400 with the reason, and search nothing', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const before = (await events({ action: 'search' })).length;
    const badPatient = await b.agent.get(`/p/${p.slug}/audit?patient=Jane%20Doe`);
    expect(badPatient.status).to.equal(400);
    expect(badPatient.text).to.include('A patient id looks like');
    expect(badPatient.text).to.include('Jane Doe'); // echoed into the form, escaped
    const badDates = await b.agent.get(`/p/${p.slug}/audit?from=2026-02-30`);
    expect(badDates.status).to.equal(400);
    const reversed = await b.agent.get(`/p/${p.slug}/audit?from=2026-05-02&to=2026-05-01`);
    expect(reversed.text).to.include('The start date is after the end date.');
    const xss = await b.agent.get(`/p/${p.slug}/audit?action=%3Cscript%3E`);
    expect(xss.status).to.equal(400);
    expect(xss.text).to.not.include('<script>');
    expect((await events({ action: 'search' })).length).to.equal(before);
  });

  it('front desk cannot read the audit log (not found, audited)', async () => {
    const desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    const d = await signIn(built.app, p.slug, desk, clock);
    expect((await d.agent.get(`/p/${p.slug}/audit`)).status).to.equal(404);
    expect((await events({ action: 'permission_denied', actor_id: desk.id }))[0]).to.deep.include({ details: { permission: 'audit.read' } });
  });

  it('CSV export needs a recent step-up, is audited with its count, and cannot inject formulas', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    clock.advance(6 * 60_000);
    const page = await b.form(`/p/${p.slug}/audit`);
    const demanded = await b.agent.post(`/p/${p.slug}/audit/export`).type('form').send({ _csrf: page.token, patient: patientId });
    expect(demanded.status).to.equal(303);
    expect(demanded.headers.location).to.equal(`/p/${p.slug}/step-up?next=${encodeURIComponent(`/p/${p.slug}/audit`)}`);
    expect(await events({ action: 'audit_export' })).to.have.length(0);

    clock.advance(30_000);
    const step = await b.form(String(demanded.headers.location));
    await b.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: step.token, password: STAFF_PASSWORD, code: await generate({ secret: owner.secret!, epoch: Math.floor(clock.now() / 1000) }), next: `/p/${p.slug}/audit` });
    // Back on the audit page with the export's filters (not an empty search), ready to export again.
    const back = await b.form(`/p/${p.slug}/audit`); // the step-up renewed the session (and its CSRF token)
    expect(back.text).to.include('These are the filters you chose');
    const exportForm = /<form method="post" action="[^"]+\/audit\/export">([\s\S]*?)<\/form>/.exec(back.text)![1]!;
    const fields = Object.fromEntries([...exportForm.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((m) => [m[1], m[2]]));
    expect(fields).to.deep.include({ patient: patientId, action: '', outcome: '' });
    const csv = await b.agent.post(`/p/${p.slug}/audit/export`).type('form').send(fields);
    expect(csv.status).to.equal(200);
    expect(csv.headers['content-type']).to.match(/^text\/csv/);
    expect(csv.headers['content-disposition']).to.match(/^attachment; filename="audit-audit-views-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = csv.text.trim().split('\r\n');
    expect(lines[0]).to.equal('"seq","time_utc","actor_type","actor_id","actor_name","action","resource_type","resource_id","patient_id","outcome","ip","request_id","reason","details"');
    // 60 views + 1 denial + the searches naming this patient.
    const exported = await events({ action: 'audit_export' });
    expect(exported).to.have.length(1);
    const count = (exported[0]!.details as { count: number }).count;
    expect(lines.length - 1).to.equal(count);
    expect(count).to.be.greaterThanOrEqual(62);
    expect(exported[0]).to.deep.include({ patient_id: patientId, outcome: 'allowed' });
    // Exactly the filtered rows: every event naming this patient before the export, and nothing else.
    const expected = await t.current.owner('audit_events').where({ practice_id: p.id, patient_id: patientId }).whereNot({ action: 'audit_export' }).count<{ n: string }[]>({ n: '*' });
    expect(lines.length - 1).to.equal(Number(expected[0]!.n));
    const patientColumn = lines.slice(1).map((l) => l.split('","')[8]);
    expect(new Set(patientColumn)).to.deep.equal(new Set([patientId]));
    expect(csv.text).to.include(`"'=HYPERLINK(""http://evil.example"")"`);
    expect(csv.text).to.not.match(/(^|,)"=/m);
  });

  it('shows the chain status from the last verification, and a broken chain loudly', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    expect((await b.agent.get(`/p/${p.slug}/audit`)).text).to.include('has not been verified yet');
    const ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent') };
    expect((await runJob(auditVerifyFullJob, ctx)).outcome).to.equal('ok');
    expect((await b.agent.get(`/p/${p.slug}/audit`)).text).to.match(/Chain verified .* \(in full\): intact through event #\d+/);
    await tamperAsSuperuser(t.current.name, "UPDATE audit_events SET outcome = 'denied' WHERE practice_id = ? AND seq = 5", [p.id]);
    await runJob(auditVerifyFullJob, ctx);
    expect((await b.agent.get(`/p/${p.slug}/audit`)).text).to.include('CHAIN BROKEN: hash_mismatch at event #5');
  });
});
