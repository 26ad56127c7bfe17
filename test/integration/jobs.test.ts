import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { listAlerts } from '../../src/queries/alerts.queries.js';
import { INSTALLATION_ID } from '../../src/db/tenant.js';
import { audit } from '../../src/audit/record.js';
import { createCheckpoint } from '../../src/audit/checkpoints.js';
import { createLogger } from '../../src/config/logger.js';
import { MemoryTransport } from '../support/mail.js';
import { auditVerifyFullJob, auditVerifyJob } from '../../src/jobs/audit-verify.job.js';
import { auditCheckpointJob } from '../../src/jobs/audit-checkpoint.job.js';
import { runJob, type Job, type JobContext } from '../../src/jobs/scheduler.js';
import { createKnex } from '../../src/db/knex.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice } from '../support/factories.js';
import { tamperAsSuperuser } from '../support/superuser.js';

describe('scheduler and audit jobs', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let ctx: JobContext;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent') };
  });
  after(() => fx?.cleanup());

  it('two scheduler instances on one database run a job once; the run is recorded', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let runs = 0;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const job: Job = {
      name: `probe-${randomBytes(3).toString('hex')}`,
      schedule: '* * * * *',
      async run() {
        runs++;
        started();
        await gate;
        return { things: 7 };
      },
    };
    // A second "replica": its own pool on the same database.
    const other = createKnex(t.current.runtimeUrl, { poolMax: 2 });
    try {
      const first = runJob(job, ctx, 'schedule');
      await running; // the first holds the lock now
      const second = await runJob(job, { ...ctx, db: { ...ctx.db, knex: other } }, 'schedule');
      release();
      expect(second).to.deep.equal({ outcome: 'skipped' });
      expect(await first).to.deep.equal({ outcome: 'ok', counts: { things: 7 } });
      expect(runs).to.equal(1);
      const rows = await t.current.app('job_runs').where({ job: job.name }).select('outcome', 'counts', 'trigger');
      expect(rows).to.deep.equal([{ outcome: 'ok', counts: { things: 7 }, trigger: 'schedule' }]);
    } finally {
      await other.destroy();
    }
  });

  it('a failing job is recorded as failed with its error type only', async () => {
    const job: Job = { name: 'probe-fails', schedule: '* * * * *', run: async () => { throw new TypeError('details that stay in the log'); } };
    expect(await runJob(job, ctx)).to.deep.equal({ outcome: 'failed', errorType: 'TypeError' });
    const row = await t.current.app('job_runs').where({ job: 'probe-fails' }).first();
    expect(row.outcome).to.equal('failed');
    expect(JSON.stringify(row)).to.not.include('details that stay');
  });

  it('audit-verify raises a critical alert for a broken chain and leaves intact practices alone', async () => {
    const good = await buildPractice(t.current.owner);
    const bad = await buildPractice(t.current.owner);
    for (const p of [good, bad]) {
      await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
        for (let i = 0; i < 6; i++) await audit.record(trx, { practiceId: p.id, actor: { kind: 'system', id: 'test' }, action: 'view', outcome: 'allowed' });
      });
    }
    expect((await runJob(auditCheckpointJob, ctx)).outcome).to.equal('ok');
    // After the checkpoint, more events; then a superuser edits one of them.
    await t.current.db.withPractice(bad.id, { kind: 'system', id: 'test' }, async (trx) => {
      for (let i = 0; i < 3; i++) await audit.record(trx, { practiceId: bad.id, actor: { kind: 'system', id: 'test' }, action: 'list', outcome: 'allowed' });
    });
    const incremental = await runJob(auditVerifyJob, ctx);
    expect(incremental).to.deep.include({ outcome: 'ok' });
    await tamperAsSuperuser(t.current.name, "UPDATE audit_events SET outcome = 'denied' WHERE practice_id = ? AND seq = 8", [bad.id]);
    const result = await runJob(auditVerifyJob, ctx);
    expect(result.outcome === 'ok' && result.counts.broken).to.equal(1);
    const alerts = await t.current.db.withPractice(bad.id, { kind: 'system', id: 'test' }, (trx) => listAlerts(trx, { state: 'open' }, 100));
    expect(alerts.map((a) => [a.kind, a.severity])).to.deep.equal([['audit_verification_failed', 'critical']]);
    const none = await t.current.db.withPractice(good.id, { kind: 'system', id: 'test' }, (trx) => listAlerts(trx, { state: 'open' }, 100));
    expect(none).to.deep.equal([]);
    // The operators hear of it too: an installation alert naming the practice (ids only).
    const installation = await t.current.db.withPractice(INSTALLATION_ID, { kind: 'system', id: 'test' }, (trx) => listAlerts(trx, { state: 'open', kind: 'audit_verification_failed' }, 100));
    expect(installation.map((a) => a.details.target_id)).to.include(bad.id);
  });

  it('the incremental check trusts signed history; the nightly full check catches an edit before the checkpoint', async () => {
    const p = await buildPractice(t.current.owner);
    await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      for (let i = 0; i < 4; i++) await audit.record(trx, { practiceId: p.id, actor: { kind: 'system', id: 'test' }, action: 'view', outcome: 'allowed' });
    });
    await createCheckpoint(t.current.db, fx.keyring.provider, p.id);
    await tamperAsSuperuser(t.current.name, "UPDATE audit_events SET action = 'print' WHERE practice_id = ? AND seq = 2", [p.id]);
    const full = await runJob(auditVerifyFullJob, ctx);
    expect(full.outcome === 'ok' && full.counts.broken).to.be.at.least(1);
    const alerts = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => listAlerts(trx, { state: 'open' }, 100));
    expect(alerts).to.have.length(1);
  });
});
