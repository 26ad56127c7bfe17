import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import express from 'express';
import type { Knex } from 'knex';
import request from 'supertest';
import { audit, createCheckpoint, exportCheckpoint, parseCheckpointFile, sealAll, verifyCheckpointSignature, verifyPractice } from '../../src/audit/index.js';
import { createLogger } from '../../src/config/logger.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { createKnex } from '../../src/db/knex.js';
import { onDatabase } from '../../src/db/provision.js';
import { errorHandler } from '../../src/middleware/errors.js';
import { requestContext } from '../../src/middleware/request-context.js';
import { testCluster } from '../support/cluster.js';
import { buildCryptoFixture, createTestRecordsTable, testRecords, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice } from '../support/factories.js';
import { tamperAsSuperuser } from '../support/superuser.js';

const actor = { kind: 'user', id: randomUUID() } as const;

describe('audit log', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let superuser: Knex;

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    superuser = createKnex(onDatabase(testCluster().superuserUrl, t.current.name), { poolMax: 1 });
  });
  after(async () => {
    await superuser?.destroy();
    await fx?.cleanup();
  });

  async function writeEvents(practiceId: string, n: number): Promise<void> {
    await t.current.db.withPractice(practiceId, { kind: 'user', id: actor.id }, async (trx) => {
      for (let i = 0; i < n; i++) {
        await audit.record(trx, { practiceId, actor, action: 'view', resource: { type: 'patient', id: randomUUID() }, outcome: 'allowed', details: { count: i } });
      }
    });
  }

  /** A practice with `n` sealed events (and, optionally, a checkpoint at the head). */
  async function chain(n: number, checkpoint = false): Promise<string> {
    const p = await buildPractice(t.current.owner);
    await writeEvents(p.id, n);
    await sealAll(t.current.db);
    if (checkpoint) await createCheckpoint(t.current.db, fx.keyring.provider, p.id);
    return p.id;
  }

  /** Tampering as a database superuser who also switches the append-only trigger off. */
  const tamper = (sql: string, bindings: readonly unknown[]): Promise<void> => tamperAsSuperuser(t.current.name, sql, bindings);

  it('events from concurrent writers in two practices seal into chains that verify', async () => {
    const a = await buildPractice(t.current.owner);
    const b = await buildPractice(t.current.owner);
    // 16 concurrent transactions, with sealers running in between.
    const writers = Array.from({ length: 16 }, (_, i) => writeEvents(i % 2 ? a.id : b.id, 20));
    await Promise.all([...writers, sealAll(t.current.db), sealAll(t.current.db)]);
    await sealAll(t.current.db);
    for (const p of [a, b]) {
      const r = await verifyPractice(t.current.db, fx.keyring.provider, p.id);
      expect(r, JSON.stringify(r)).to.include({ ok: true, checked: 160, lastSeq: '160' });
    }
  });

  it('detects a deleted row at its sequence number', async () => {
    const p = await chain(10);
    await tamper('DELETE FROM audit_events WHERE practice_id = ? AND seq = 4', [p]);
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p)).problem).to.deep.equal({ kind: 'missing', seq: '4' });
  });

  it('detects a column edited by a superuser at its sequence number', async () => {
    const p = await chain(10);
    await tamper("UPDATE audit_events SET action = 'list' WHERE practice_id = ? AND seq = 6", [p]);
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p)).problem).to.deep.equal({ kind: 'hash_mismatch', seq: '6' });
  });

  it('splits long chains in two (the second half in a worker over its own connection) with the same findings, at the exact sequence', async () => {
    // batchSize 3 and 20 events: split at 10; the worker checks 11–20.
    const opts = { batchSize: 3 };
    const good = await chain(20);
    expect(await verifyPractice(t.current.db, fx.keyring.provider, good, opts)).to.include({ ok: true, checked: 20, lastSeq: '20' });
    const cases: [string, string, { kind: string; seq: string }][] = [
      ["UPDATE audit_events SET action = 'list' WHERE practice_id = ? AND seq = 4", 'first half', { kind: 'hash_mismatch', seq: '4' }],
      ["UPDATE audit_events SET action = 'list' WHERE practice_id = ? AND seq = 10", 'last row of the first half', { kind: 'hash_mismatch', seq: '10' }],
      ["UPDATE audit_events SET action = 'list' WHERE practice_id = ? AND seq = 11", 'first row of the second half', { kind: 'hash_mismatch', seq: '11' }],
      ["UPDATE audit_events SET action = 'list' WHERE practice_id = ? AND seq = 17", 'second half', { kind: 'hash_mismatch', seq: '17' }],
      ["UPDATE audit_events SET action = 'list' WHERE practice_id = ? AND seq IN (6, 16)", 'both halves: the first wins', { kind: 'hash_mismatch', seq: '6' }],
      ['DELETE FROM audit_events WHERE practice_id = ? AND seq = 9', 'deleted before the middle', { kind: 'missing', seq: '9' }],
      ['DELETE FROM audit_events WHERE practice_id = ? AND seq = 10', 'deleted at the middle', { kind: 'missing', seq: '10' }],
      ['DELETE FROM audit_events WHERE practice_id = ? AND seq = 15', 'deleted in the second half', { kind: 'missing', seq: '15' }],
    ];
    for (const [sql, where, problem] of cases) {
      const p = await chain(20);
      await tamper(sql, [p]);
      const split = await verifyPractice(t.current.db, fx.keyring.provider, p, opts);
      expect(split.problem, where).to.deep.equal(problem);
      expect(await verifyPractice(t.current.db, fx.keyring.provider, p, { ...opts, parallel: false }), `${where}: same as one pass`).to.deep.equal(split);
    }
  });

  it('detects reordered sequence numbers', async () => {
    const p = await chain(10);
    await tamper('UPDATE audit_events SET seq = -3 WHERE practice_id = ? AND seq = 3', [p]);
    await tamper('UPDATE audit_events SET seq = 3 WHERE practice_id = ? AND seq = 7', [p]);
    await tamper('UPDATE audit_events SET seq = 7 WHERE practice_id = ? AND seq = -3', [p]);
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p)).problem).to.deep.equal({ kind: 'prev_mismatch', seq: '3' });
  });

  it('detects a truncated tail against the last signed checkpoint', async () => {
    const p = await chain(10, true);
    await tamper('DELETE FROM audit_events WHERE practice_id = ? AND seq >= 9', [p]);
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p)).problem).to.deep.equal({ kind: 'truncated', seq: '9' });
  });

  it('detects a rewritten chain that no longer matches a signed checkpoint', async () => {
    const p = await chain(5, true);
    // A superuser recomputes a consistent chain after an edit: only the checkpoint can tell.
    await tamper("UPDATE audit_events SET outcome = 'denied' WHERE practice_id = ? AND seq = 5", [p]);
    const rows = await superuser('audit_events').where({ practice_id: p, seq: 5 }).select(...['id']);
    const { AUDIT_ROW_COLUMNS, chainHash } = await import('../../src/audit/canonical.js');
    const row = await superuser('audit_events').where({ id: rows[0].id }).first(AUDIT_ROW_COLUMNS.map((c) => superuser.raw(c)));
    await tamper('UPDATE audit_events SET hash = ? WHERE id = ?', [chainHash(row.prev_hash, row, '5'), rows[0].id]);
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p)).problem).to.deep.equal({ kind: 'checkpoint_mismatch', seq: '5' });
  });

  it('a checkpoint verifies with the public key alone, and fails after tampering', async () => {
    const p = await buildPractice(t.current.owner);
    await writeEvents(p.id, 3);
    const cp = await createCheckpoint(t.current.db, fx.keyring.provider, p.id);
    expect(cp?.seq).to.equal('3');
    const publicKey = (await fx.keyring.provider.checkpointPublicKey(cp!.keyId))!;
    const file = exportCheckpoint(cp!, publicKey);
    const parsed = parseCheckpointFile(file)!;
    expect(verifyCheckpointSignature(parsed.checkpoint, parsed.publicKey)).to.equal(true);
    expect(verifyCheckpointSignature({ ...parsed.checkpoint, seq: '4' }, parsed.publicKey)).to.equal(false);
    const head = Buffer.from(parsed.checkpoint.headHash);
    head[0]! ^= 1;
    expect(verifyCheckpointSignature({ ...parsed.checkpoint, headHash: head }, parsed.publicKey)).to.equal(false);
    const otherKey = (await buildCryptoFixture(t.current)).keyring.provider;
    expect(verifyCheckpointSignature(parsed.checkpoint, (await otherKey.checkpointPublicKey(`k1:ed25519`))!)).to.equal(false);

    await tamper('UPDATE audit_checkpoints SET signature = ? WHERE practice_id = ?', [Buffer.alloc(64, 7), p.id]);
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p.id)).problem).to.deep.equal({ kind: 'bad_signature', seq: '3' });
  });

  it('the runtime role cannot UPDATE, DELETE or TRUNCATE events, nor re-seal a sealed one', async () => {
    const p = await chain(3);
    const attempts: [string, (trx: Knex.Transaction) => Promise<unknown>][] = [
      ['UPDATE content', (trx) => trx('audit_events').update({ action: 'list' })],
      ['DELETE', (trx) => trx('audit_events').delete()],
      ['TRUNCATE', (trx) => trx.raw('TRUNCATE audit_events')],
      ['re-seal', (trx) => trx('audit_events').where({ seq: 1 }).update({ hash: Buffer.alloc(32) })],
      ['UPDATE checkpoint', (trx) => trx('audit_checkpoints').update({ seq: 0 })],
    ];
    for (const [what, attempt] of attempts) {
      let code: string | undefined;
      await t.current.db.withPractice(p, actor, attempt).catch((e: { code?: string }) => (code = e.code));
      expect(code, what).to.equal('42501');
    }
    expect((await verifyPractice(t.current.db, fx.keyring.provider, p)).ok).to.equal(true);
  });

  describe('fail closed', () => {
    let practiceId: string;
    let recordId: string;

    before(async () => {
      await createTestRecordsTable(t.current.owner);
      practiceId = (await buildPractice(t.current.owner)).id;
      recordId = await t.current.db.withPractice(practiceId, actor, async (trx) => {
        const id = randomUUID();
        await trx('test_records').insert({ id, practice_id: practiceId, ...(await testRecords.seal(new PracticeCrypto(fx.keyring, trx, practiceId), id, { secret: 'TOP-SECRET-PHI' })) });
        return id;
      });
    });

    /** The pattern every PHI read follows: audit row first, in the same transaction, then the data. */
    function phiApp() {
      const app = express();
      app.use(requestContext(createLogger('silent'), { trustIncomingId: false }));
      app.get('/record', async (req, res) => {
        const secret = await t.current.db.withPractice(practiceId, actor, async (trx) => {
          await audit.record(trx, { practiceId, actor, action: 'view', resource: { type: 'patient', id: recordId }, outcome: 'allowed', requestId: req.id });
          const row = await trx('test_records').where({ id: recordId }).first();
          return (await testRecords.open(new PracticeCrypto(fx.keyring, trx, practiceId), row)).secret;
        });
        res.json({ secret });
      });
      app.set('views', new URL('../../views', import.meta.url).pathname);
      app.set('view engine', 'ejs');
      app.use(errorHandler);
      return app;
    }

    it('serves the record with its audit row written', async () => {
      const res = await request(phiApp()).get('/record').set('Accept', 'application/json');
      expect(res.status).to.equal(200);
      expect(res.body.secret).to.equal('TOP-SECRET-PHI');
      const rows = await t.current.db.withPractice(practiceId, actor, (trx) => trx('audit_events').where({ resource_id: recordId }).count<{ count: string }[]>('* as count'));
      expect(Number(rows[0]!.count)).to.equal(1);
    });

    it('a failing audit write means no PHI in the response', async () => {
      await t.current.owner.raw(`
        CREATE FUNCTION test_fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$;
        CREATE TRIGGER test_fail_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION test_fail_audit();
      `);
      try {
        const res = await request(phiApp()).get('/record').set('Accept', 'application/json');
        expect(res.status).to.equal(500);
        expect(res.text).to.not.include('TOP-SECRET-PHI');
        expect(res.body).to.deep.include({ status: 500 });
      } finally {
        await t.current.owner.raw('DROP TRIGGER test_fail_audit ON audit_events; DROP FUNCTION test_fail_audit();');
      }
    });
  });
});
