import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { createLogger } from '../../src/config/logger.js';
import { exportJob } from '../../src/jobs/export.job.js';
import { runJob } from '../../src/jobs/scheduler.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { generate } from 'otplib';
import { buildStaff, signIn, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';

/** The export pages (issue 17): owner only, step-up to start and to download, the passphrase once, progress, the download audited. */
describe('practice export pages', () => {
  const { t, clock } = useStaffApp({ slug: 'export-http', name: 'Premolar Place' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let built: StaffApp['built'];
  let owner: BuiltStaff;
  let desk: BuiltStaff;
  let patientId: string;
  const job = () => runJob(exportJob, { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent'), clock: clock.now });
  const exportIdFrom = (location: string) => /\/exports\/([0-9a-f-]{36})$/.exec(location)![1]!;

  before(async () => {
    owner = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { owner: true });
    desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    for (let i = 0; i < 3; i++) patientId = (await buildPatient(t.current.db, fx.keyring, p)).id;
  });

  it('front desk staff can neither see nor start an export', async () => {
    const b = await signIn(built.app, p.slug, desk, clock);
    expect((await b.agent.get(`/p/${p.slug}/exports`)).status, 'refused like any page one may not see').to.equal(404);
    const home = await b.agent.get(`/p/${p.slug}/home`);
    expect(home.text).to.not.include(`/p/${p.slug}/exports`);
    const token = (await b.form(`/p/${p.slug}/home`)).token;
    expect((await b.agent.post(`/p/${p.slug}/exports`).type('form').send({ _csrf: token })).status).to.equal(404);
    expect(await t.current.owner('practice_exports').count<{ n: string }[]>({ n: '*' })).to.deep.equal([{ n: '0' }]);
  });

  it('the owner starts an export (step-up first), sees the passphrase once, watches it progress, downloads it (step-up, audited)', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const page = await b.form(`/p/${p.slug}/exports`);
    expect(page.text).to.include('Start an export of every patient').and.include('shown to you <strong>once</strong>');
    clock.advance(6 * 60_000); // the sign-in is no longer recent
    const stale = await b.agent.post(`/p/${p.slug}/exports`).type('form').send({ _csrf: page.token });
    expect(stale.status).to.equal(303);
    expect(stale.headers.location).to.match(/\/step-up/);
    expect(await t.current.owner('practice_exports').count<{ n: string }[]>({ n: '*' })).to.deep.equal([{ n: '0' }]);
    const step = await b.form(String(stale.headers.location));
    clock.advance(30_000);
    const confirmed = await b.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: step.token, password: STAFF_PASSWORD, code: await generate({ secret: owner.secret!, epoch: Math.floor(clock.now() / 1000) }), next: `/p/${p.slug}/exports` });
    expect(confirmed.status).to.equal(303);

    const again = await b.form(`/p/${p.slug}/exports`);
    const started = await b.agent.post(`/p/${p.slug}/exports`).type('form').send({ _csrf: again.token });
    expect(started.status).to.equal(303);
    const id = exportIdFrom(started.headers.location!);
    const first = await b.agent.get(`/p/${p.slug}/exports/${id}`);
    const passphrase = /<code>([0-9A-Z]{4}(?:-[0-9A-Z]{4}){4})<\/code>/.exec(first.text)?.[1];
    expect(passphrase, 'the passphrase, once').to.be.a('string');
    expect(first.text).to.not.include('http-equiv="refresh"'); // it does not refresh away before it was noted
    const second = await b.agent.get(`/p/${p.slug}/exports/${id}`);
    expect(second.text).to.not.include(passphrase!);
    expect(second.text).to.include('http-equiv="refresh"').and.include('0 of 3 patients');
    expect(JSON.stringify(built.logs)).to.not.include(passphrase!);

    expect((await job()).outcome).to.equal('ok');
    const ready = await b.agent.get(`/p/${p.slug}/exports/${id}`);
    expect(ready.text).to.include('Ready').and.include(`/p/${p.slug}/exports/${id}/download`).and.not.include('http-equiv="refresh"');
    const download = await b.agent.get(`/p/${p.slug}/exports/${id}/download`).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(download.status).to.equal(200);
    expect(download.headers['content-type']).to.equal('application/zip');
    expect(download.headers['content-disposition']).to.match(/^attachment; filename="enamel-export-export-http-\d{4}-\d{2}-\d{2}\.zip"$/);
    expect((download.body as Buffer).subarray(0, 2).toString()).to.equal('PK');
    const downloads = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'download', resource_type: 'export', resource_id: id, actor_id: owner.id }).count<{ n: string }[]>({ n: '*' });
    expect(downloads).to.deep.equal([{ n: '1' }]);
    const exported = await t.current.owner('audit_events').where({ practice_id: p.id, action: 'export', resource_id: id }).count<{ n: string }[]>({ n: '*' });
    expect(exported).to.deep.equal([{ n: '3' }]);
  });

  it('one patient’s records from the chart: a confirmation page, then the same export for that patient', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const chart = await b.agent.get(`/p/${p.slug}/patients/${patientId}`);
    expect(chart.text).to.include(`/p/${p.slug}/patients/${patientId}/export`);
    const confirm = await b.form(`/p/${p.slug}/patients/${patientId}/export`);
    expect(confirm.text).to.include('Start the export');
    const started = await b.agent.post(`/p/${p.slug}/patients/${patientId}/export`).type('form').send({ _csrf: confirm.token });
    expect(started.status).to.equal(303);
    const id = exportIdFrom(started.headers.location!);
    const row = await t.current.owner('practice_exports').where({ id }).first('scope', 'patient_id', 'total');
    expect(row).to.deep.equal({ scope: 'patient', patient_id: patientId, total: 1 });
    await job();
    expect((await b.agent.get(`/p/${p.slug}/exports/${id}`)).text).to.include('Export of one patient’s records').and.include('Ready');
  });

  it('an unknown export is a 404; a download of one that is not ready is a 410', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    expect((await b.agent.get(`/p/${p.slug}/exports/00000000-0000-4000-8000-000000000000`)).status).to.equal(404);
    expect((await b.agent.get(`/p/${p.slug}/exports/not-an-id`)).status).to.equal(404);
    const page = await b.form(`/p/${p.slug}/exports`);
    const started = await b.agent.post(`/p/${p.slug}/exports`).type('form').send({ _csrf: page.token });
    const id = exportIdFrom(started.headers.location!);
    expect((await b.agent.get(`/p/${p.slug}/exports/${id}/download`)).status).to.equal(410);
    const busy = await b.agent.post(`/p/${p.slug}/exports`).type('form').send({ _csrf: (await b.form(`/p/${p.slug}/exports`)).token });
    expect(busy.status, 'one export at a time').to.equal(409);
    expect(busy.text).to.include('already being prepared');
    await job();
  });
});
