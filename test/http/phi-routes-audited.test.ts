import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import sharp from 'sharp';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { planItemSecrets, planSecrets } from '../../src/queries/plans.queries.js';
import { submissionSecrets } from '../../src/queries/forms.queries.js';
import { accessOf } from '../../src/routes/access.js';
import { buildRouter } from '../../src/routes/index.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn } from '../support/staff.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean>; stack: { handle: unknown }[] };
}

/** Permissions whose pages show patient information. */
const PHI_PERMISSIONS = new Set(['patients.read', 'patients.write', 'clinical.read', 'plans.read', 'documents.download', 'documents.office', 'audit.read', 'breakglass.use', 'forms.review', 'portal.send']);

describe('every page and download that shows PHI writes its audit event', () => {
  const { t, clock } = useStaffApp({ slug: 'phi-routes' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let built: StaffApp['built'];

  it('walks the route table: each GET of a patient page, print view or file answers 200 and audits the patient in the same request', async () => {
    const router = buildRouter({ config: built.config, db: t.current.db, keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now });
    const routes = (router.stack as unknown as Layer[])
      .filter((l) => l.route?.methods.get)
      .map((l) => ({ path: l.route!.path, access: accessOf(l.route!.stack[0]?.handle) }))
      .filter((r) => r.access?.kind === 'permission' && PHI_PERMISSIONS.has(r.access.permission) && /:id|:token/.test(r.path));
    expect(routes.map((r) => r.path)).to.include.members(['/p/:slug/patients/:id', '/p/:slug/patients/:id/notes', '/p/:slug/patients/:id/plans', '/p/:slug/patients/:id/documents', '/p/:slug/patients/:id/access', '/p/:slug/plans/:id/print', '/p/:slug/files/:token', '/p/:slug/documents/:id', '/p/:slug/patients/:id/forms', '/p/:slug/form-submissions/:id', '/p/:slug/patients/:id/links']);

    // One patient with a plan and a photo; the owner may open every page.
    const owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const planId = randomUUID();
    const submissionId = randomUUID();
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx: Knex.Transaction) => {
      const pc = new PracticeCrypto(fx.keyring, trx, p.id);
      await trx('treatment_plans').insert({ id: planId, practice_id: p.id, patient_id: patient.id, status: 'draft', created_by: owner.id, ...(await planSecrets.seal(pc, planId, { title: 'Plan' })) });
      const itemId = randomUUID();
      await trx('treatment_plan_items').insert({ id: itemId, practice_id: p.id, plan_id: planId, phase: 1, ...(await planItemSecrets.seal(pc, itemId, { content: { cdt: 'D1110', tooth: null, surfaces: null, description: 'Prophylaxis', fee: 9000, insurance: 0 } })) });
      const version = await trx('form_template_versions').first<{ id: string }>('id');
      const linkId = randomUUID();
      await trx('patient_links').insert({ id: linkId, practice_id: p.id, patient_id: patient.id, tasks: ['uploads'], code_hash: 'c'.repeat(64), created_by: owner.id, expires_at: new Date(clock.now() + 86_400_000) });
      await trx('form_submissions').insert({ id: submissionId, practice_id: p.id, patient_id: patient.id, template_version_id: version!.id, link_id: linkId, content_hash: 'd'.repeat(64), submitted_at: new Date(clock.now()), ...(await submissionSecrets.seal(pc, submissionId, { content: { answers: {}, signer: { fullName: 'Pat Signer', signature: 'P', drawing: null } } })) });
    });
    const b = await signIn(built.app, p.slug, owner, clock);
    const form = await b.form(`/p/${p.slug}/patients/${patient.id}/documents`);
    const jpeg = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#ddd' } }).jpeg().toBuffer();
    await b.agent.post(`/p/${p.slug}/patients/${patient.id}/documents`).field('_csrf', form.token).field('kind', 'radiograph').attach('file', jpeg, 'x.jpg');
    const docs = (await b.agent.get(`/p/${p.slug}/patients/${patient.id}/documents`)).text;
    const docId = /\/documents\/([0-9a-f-]{36})">View/.exec(docs)![1]!;
    const fileUrl = /<img src="(\/p\/[^"]+\/files\/[^"]+)"/.exec((await b.agent.get(`/p/${p.slug}/documents/${docId}`)).text)![1]!;

    for (const route of routes) {
      const url = route.path === '/p/:slug/files/:token' ? fileUrl : route.path.replace(':slug', p.slug).replace(':id', route.path.startsWith('/p/:slug/plans/') ? planId : route.path.startsWith('/p/:slug/form-submissions/') ? submissionId : route.path.startsWith('/p/:slug/documents/') ? docId : patient.id);
      // The break-glass form shows nothing of the patient (and is refused to someone who already has access).
      if (route.path.endsWith('/break-glass')) continue;
      const res = await b.agent.get(url);
      expect(res.status, route.path).to.equal(200);
      const requestId = String(res.headers['x-request-id']);
      const events = await t.current.owner('audit_events').where({ practice_id: p.id, request_id: requestId, patient_id: patient.id, outcome: 'allowed' }).select('action');
      expect(events.length, `${route.path} audited`).to.be.greaterThan(0);
    }
  });
});
