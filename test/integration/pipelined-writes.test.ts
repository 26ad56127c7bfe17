import { expect } from 'chai';
import { ANONYMOUS, sendWithoutWaiting } from '../../src/db/tenant.js';
import { audit } from '../../src/audit/record.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';
import { useTestDatabase } from '../support/db.js';

/**
 * withPractice sends the tenant context with the work's first statement, and the audit insert with
 * COMMIT (pipeline mode, db/tenant.ts). These tests hold it to what that must never change: the
 * first statement already runs in the practice, and a write that fails unseen still fails the
 * whole transaction — nothing commits and the caller gets the write's error, not the work's result.
 */
describe('pipelined statements in withPractice', () => {
  const t = useTestDatabase();
  let a: BuiltPractice;
  let b: BuiltPractice;

  before(async () => {
    a = await buildPractice(t.current.owner, { slug: 'alpha', locations: ['Alpha North'] });
    b = await buildPractice(t.current.owner, { slug: 'bravo', locations: ['Bravo Central'] });
  });

  const auditCount = async (practiceId: string) => Number((await t.current.owner('audit_events').where({ practice_id: practiceId }).count<{ n: string }[]>({ n: '*' }))[0]!.n);

  it('the work’s very first statement runs with the practice context set', async () => {
    const seen = await t.current.db.withPractice(a.id, { kind: 'system', id: 'pipeline-test' }, (trx) =>
      trx.raw<{ rows: { practice: string; actor: string }[] }>("SELECT current_setting('app.practice_id', true) AS practice, current_setting('app.actor', true) AS actor"),
    );
    expect(seen.rows[0]).to.deep.equal({ practice: a.id, actor: 'system:pipeline-test' });
  });

  it('a first statement sent at once (its .then called in the same tick) still runs after the context', async () => {
    // knex sends a statement when its .then is called: the work calling it synchronously is the
    // earliest any statement can go out, and the context must already be ahead of it.
    const names = await t.current.db.withPractice(a.id, ANONYMOUS, (trx) => trx('locations').pluck('name').then((n: string[]) => n));
    expect(names).to.deep.equal(['Alpha North']);
  });

  it('an audit event is committed with the work and counted once', async () => {
    const before = await auditCount(a.id);
    await t.current.db.withPractice(a.id, ANONYMOUS, (trx) => audit.record(trx, { practiceId: a.id, actor: { kind: 'anonymous' }, action: 'view', outcome: 'allowed' }));
    expect(await auditCount(a.id)).to.equal(before + 1);
  });

  it('an audit insert that fails unseen rolls the work back and throws its own error instead of returning the result', async () => {
    const beforeA = await auditCount(a.id);
    const beforeB = await auditCount(b.id);
    let result: unknown = 'not returned';
    let error: unknown;
    try {
      result = await t.current.db.withPractice(a.id, ANONYMOUS, async (trx) => {
        await trx('locations').where({ id: a.locationIds[0] }).update({ name: 'Renamed' });
        // An event for another practice: row-level security refuses it (42501), but nobody waits for the answer.
        await audit.record(trx, { practiceId: b.id, actor: { kind: 'anonymous' }, action: 'view', outcome: 'allowed' });
        return 'the PHI';
      });
    } catch (e) {
      error = e;
    }
    expect(result).to.equal('not returned');
    expect((error as { code?: string }).code).to.equal('42501');
    expect(await auditCount(a.id)).to.equal(beforeA);
    expect(await auditCount(b.id)).to.equal(beforeB);
    const names = await t.current.db.withPractice(a.id, ANONYMOUS, (trx) => trx('locations').pluck('name'));
    expect(names).to.deep.equal(['Alpha North']);
  });

  it('when later statements fail because the transaction is aborted, the first failure is the one reported', async () => {
    let error: unknown;
    await t.current.db
      .withPractice(a.id, ANONYMOUS, async (trx) => {
        await sendWithoutWaiting(trx, trx('locations').insert({ practice_id: b.id, name: 'Sneaky' }));
        await trx('locations').select('id'); // 25P02: current transaction is aborted
      })
      .catch((e: unknown) => (error = e));
    expect((error as { code?: string }).code).to.equal('42501');
    const bNames = await t.current.db.withPractice(b.id, ANONYMOUS, (trx) => trx('locations').pluck('name'));
    expect(bNames).to.deep.equal(['Bravo Central']);
  });

  it('outside withPractice a statement sent this way is simply waited for', async () => {
    let error: unknown;
    await t.current.app
      .transaction((trx) => sendWithoutWaiting(trx, trx.raw('SELECT 1/0')))
      .catch((e: unknown) => (error = e));
    expect((error as { code?: string }).code).to.equal('22012');
  });
});
