import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { openFile, readFileFully, saveFile } from '../../src/crypto/encrypted-files.js';
import { DecryptionError, KeyDestroyedError } from '../../src/crypto/errors.js';
import { fieldKeyVersion } from '../../src/crypto/field-cipher.js';
import { rewrapAll, rotateDataKey, runRotation, shredPractice, keyStatus } from '../../src/crypto/key-management.js';
import { Keyring, wrapContext, type Purpose } from '../../src/crypto/keyring.js';
import { createKnex } from '../../src/db/knex.js';
import { onDatabase } from '../../src/db/provision.js';
import type { Actor } from '../../src/db/tenant.js';
import { createLogger } from '../../src/config/logger.js';
import { captureLogs } from '../support/app.js';
import { testCluster } from '../support/cluster.js';
import { buildCryptoFixture, createTestRecordsTable, newKek, testRecords, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

const actor: Actor = { kind: 'system', id: 'test' };

describe('encryption at rest (database, keys, files)', () => {
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let a: BuiltPractice;
  let b: BuiltPractice;
  /** Every message of every error the crypto layer raised in this file (scanned for key material). */
  const errorMessages: string[] = [];
  const loggedErrors: unknown[] = [];

  before(async () => {
    await createTestRecordsTable(t.current.owner);
    fx = await buildCryptoFixture(t.current);
    a = await buildPractice(t.current.owner, { slug: 'enc-a' });
    b = await buildPractice(t.current.owner, { slug: 'enc-b' });
  });
  after(() => fx?.cleanup());

  async function insertRecord(practiceId: string, values: { secret?: string; last_name?: string; dob?: string; extra?: unknown }): Promise<string> {
    return fx.db.withPractice(practiceId, actor, async (trx) => {
      const id = (await trx.raw<{ rows: { id: string }[] }>('SELECT gen_random_uuid() AS id')).rows[0]!.id;
      const sealed = await testRecords.seal(new PracticeCrypto(fx.keyring, trx, practiceId), id, values);
      await trx('test_records').insert({ id, practice_id: practiceId, ...sealed });
      return id;
    });
  }

  async function readRecord(practiceId: string, id: string, keyring = fx.keyring) {
    return fx.db.withPractice(practiceId, actor, async (trx) => {
      const row = await trx('test_records').where({ id }).first();
      return testRecords.open(new PracticeCrypto(keyring, trx, practiceId), row);
    });
  }

  async function expectError<E>(work: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
    try {
      await work;
    } catch (e) {
      errorMessages.push(String((e as Error).message), String((e as Error).stack));
      loggedErrors.push(e);
      expect(e).to.be.instanceOf(type);
      return e as E;
    }
    throw new Error(`expected ${type.name}`);
  }

  async function findByLastName(practiceId: string, input: string): Promise<string[]> {
    return fx.db.withPractice(practiceId, actor, async (trx) => {
      const pc = new PracticeCrypto(fx.keyring, trx, practiceId);
      const indexes = await testRecords.lookup(pc, 'last_name', input);
      if (indexes.length === 0) return [];
      return trx('test_records').whereIn('last_name_bidx', indexes).pluck('id');
    });
  }

  async function findByDob(practiceId: string, input: string): Promise<string[]> {
    return fx.db.withPractice(practiceId, actor, async (trx) => {
      const indexes = await testRecords.lookup(new PracticeCrypto(fx.keyring, trx, practiceId), 'dob', input);
      return indexes.length ? trx('test_records').whereIn('dob_bidx', indexes).pluck('id') : [];
    });
  }

  it('stores only ciphertext and reads back every type', async () => {
    const id = await insertRecord(a.id, { secret: 'allergic to penicillin', last_name: 'Doe', dob: '1980-03-07', extra: { insurer: 'ACME', n: 3 } });
    const raw = await fx.db.withPractice(a.id, actor, (trx) => trx('test_records').where({ id }).first());
    for (const column of ['secret', 'last_name', 'dob', 'extra']) {
      expect(Buffer.isBuffer(raw[column]), column).to.equal(true);
      expect(raw[column].toString('latin1')).to.not.match(/penicillin|Doe|1980|ACME/);
    }
    expect(await readRecord(a.id, id)).to.deep.equal({ secret: 'allergic to penicillin', last_name: 'Doe', dob: '1980-03-07', extra: { insurer: 'ACME', n: 3 } });
  });

  it('a ciphertext copied to another row or another column fails to decrypt', async () => {
    const one = await insertRecord(a.id, { secret: 'one', last_name: 'Alpha' });
    const two = await insertRecord(a.id, { secret: 'two', last_name: 'Beta' });
    await fx.db.withPractice(a.id, actor, async (trx) => {
      const row = await trx('test_records').where({ id: one }).first();
      await trx('test_records').where({ id: two }).update({ secret: row.secret });
    });
    await expectError(readRecord(a.id, two), DecryptionError);
    await fx.db.withPractice(a.id, actor, async (trx) => {
      const row = await trx('test_records').where({ id: one }).first();
      await trx('test_records').where({ id: one }).update({ secret: row.last_name });
    });
    await expectError(readRecord(a.id, one), DecryptionError);
  });

  it('finds a record by last name regardless of case and spacing, and by date of birth in any accepted format', async () => {
    const id = await insertRecord(a.id, { last_name: "Van der O'Neill", dob: '1975-12-01' });
    for (const q of ["van der o'neill", 'VANDERONEILL', '  Van-Der O Neill ']) expect(await findByLastName(a.id, q), q).to.deep.equal([id]);
    for (const q of ['1975-12-01', '12/01/1975', '12-1-1975', '19751201']) expect(await findByDob(a.id, q), q).to.include(id);
    expect(await findByLastName(a.id, 'Van der')).to.deep.equal([]);
    expect(await findByDob(a.id, 'not a date')).to.deep.equal([]);
  });

  it('blind indexes of the same value differ between practices', async () => {
    await insertRecord(a.id, { last_name: 'Samename' });
    await insertRecord(b.id, { last_name: 'Samename' });
    const ia = await fx.db.withPractice(a.id, actor, (trx) => testRecords.lookup(new PracticeCrypto(fx.keyring, trx, a.id), 'last_name', 'Samename'));
    const ib = await fx.db.withPractice(b.id, actor, (trx) => testRecords.lookup(new PracticeCrypto(fx.keyring, trx, b.id), 'last_name', 'Samename'));
    expect(ia[0]!.equals(ib[0]!)).to.equal(false);
    expect(await findByLastName(b.id, 'samename')).to.have.length(1);
  });

  it('files: stored encrypted under a random name, read back, and a flipped byte fails', async () => {
    const data = randomBytes(200_000);
    const saved = await fx.db.withPractice(a.id, actor, (trx) => saveFile(new PracticeCrypto(fx.keyring, trx, a.id), fx.files, Readable.from([data])));
    expect(saved.plaintextSize).to.equal(data.length);
    const row = await fx.db.withPractice(a.id, actor, (trx) => trx('stored_files').where({ id: saved.id }).first());
    expect(row.object_name).to.match(/^[a-f0-9]{32}$/);
    const back = await fx.db.withPractice(a.id, actor, async (trx) => readFileFully(await openFile(new PracticeCrypto(fx.keyring, trx, a.id), fx.files, saved.id)));
    expect(back.equals(data)).to.equal(true);

    const blobPath = `${fx.filesDir}/${row.object_name.slice(0, 2)}/${row.object_name}`;
    const { readFile, writeFile } = await import('node:fs/promises');
    const blob = await readFile(blobPath);
    expect(blob.includes(data.subarray(0, 64))).to.equal(false);
    blob[100_000]! ^= 1;
    await writeFile(blobPath, blob);
    await expectError(
      fx.db.withPractice(a.id, actor, async (trx) => readFileFully(await openFile(new PracticeCrypto(fx.keyring, trx, a.id), fx.files, saved.id))),
      DecryptionError,
    );
    blob[100_000]! ^= 1;
    await writeFile(blobPath, blob);
  });

  describe('rotation', () => {
    let p: BuiltPractice;
    const ids: string[] = [];
    const fileIds: string[] = [];
    let oldCiphertext: Buffer;
    const payloads = new Map<string, Buffer>();

    before(async () => {
      p = await buildPractice(t.current.owner, { slug: 'enc-rotate' });
      for (let i = 0; i < 25; i++) ids.push(await insertRecord(p.id, { secret: `secret ${i}`, last_name: `Name${i}`, dob: '2001-02-03' }));
      for (let i = 0; i < 3; i++) {
        const data = randomBytes(70_000 + i);
        const saved = await fx.db.withPractice(p.id, actor, (trx) => saveFile(new PracticeCrypto(fx.keyring, trx, p.id), fx.files, Readable.from([data])));
        fileIds.push(saved.id);
        payloads.set(saved.id, data);
      }
      oldCiphertext = (await fx.db.withPractice(p.id, actor, (trx) => trx('test_records').where({ id: ids[0] }).first())).secret;
    });

    async function versionsOf(column: string): Promise<number[]> {
      const rows = await fx.db.withPractice(p.id, actor, (trx) => trx('test_records').select(column));
      return [...new Set(rows.filter((r: Record<string, Buffer | null>) => r[column]).map((r: Record<string, Buffer>) => fieldKeyVersion(r[column]!)))];
    }

    it('re-encryption interrupted midway resumes and leaves every value under the new version, none under the old', async () => {
      const job = await rotateDataKey(fx, p.id, 'fields', actor);
      expect(job).to.include({ from_version: 1, to_version: 2, total: 25, done: 0, status: 'running' });

      // "Crash" after one batch of 10: the job keeps its cursor and progress.
      const partial = await runRotation(fx, p.id, job.id, actor, { batchSize: 10, maxBatches: 1 });
      expect(partial).to.include({ status: 'running', done: 10 });
      expect((await versionsOf('secret')).sort()).to.deep.equal([1, 2]);
      // Mid-rotation, everything is still readable (old version retired, not destroyed).
      expect((await readRecord(p.id, ids[24]!)).secret).to.equal('secret 24');

      // A new write during the rotation goes under the new version.
      const during = await insertRecord(p.id, { secret: 'written mid-rotation' });
      ids.push(during);

      const progress: number[] = [];
      const done = await runRotation(fx, p.id, job.id, actor, { batchSize: 10, onProgress: (j) => progress.push(j.done) });
      expect(done.status).to.equal('done');
      expect(progress.length).to.be.greaterThan(1);
      expect(await versionsOf('secret')).to.deep.equal([2]);
      expect(await versionsOf('last_name')).to.deep.equal([2]);
      for (const [i, id] of ids.slice(0, 25).entries()) expect((await readRecord(p.id, id)).secret).to.equal(`secret ${i}`);
      expect((await readRecord(p.id, during)).secret).to.equal('written mid-rotation');

      // The old key is destroyed: a ciphertext kept from before (a backup) no longer opens.
      const status = await keyStatus(fx, actor);
      const fieldKeys = status.keys.filter((k) => k.practiceId === p.id && k.purpose === 'fields');
      expect(fieldKeys.map((k) => [k.version, k.status])).to.deep.equal([[1, 'destroyed'], [2, 'active']]);
      await fx.db.withPractice(p.id, actor, (trx) => trx('test_records').where({ id: ids[1] }).update({ secret: oldCiphertext }));
      await expectError(readRecord(p.id, ids[1]!), KeyDestroyedError);
      // Put a good value back so the later rotations can read every row.
      await fx.db.withPractice(p.id, actor, async (trx) => {
        const sealed = await testRecords.seal(new PracticeCrypto(fx.keyring, trx, p.id), ids[1]!, { secret: 'secret 1' });
        await trx('test_records').where({ id: ids[1] }).update(sealed);
      });
    });

    it('blind-index rotation keeps search working during and after', async () => {
      const job = await rotateDataKey(fx, p.id, 'blind-index', actor);
      await runRotation(fx, p.id, job.id, actor, { batchSize: 5, maxBatches: 2 });
      expect(await findByLastName(p.id, 'name3')).to.have.length(1); // already re-indexed
      expect(await findByLastName(p.id, 'NAME20')).to.have.length(1); // not yet re-indexed
      await runRotation(fx, p.id, job.id, actor, { batchSize: 5 });
      expect(await findByLastName(p.id, 'name20')).to.have.length(1);
      expect(await findByDob(p.id, '2/3/2001')).to.have.length(25);
    });

    it('file rotation re-encrypts every file under the new key and removes the old blobs', async () => {
      const before = await fx.db.withPractice(p.id, actor, (trx) => trx('stored_files').whereIn('id', fileIds).pluck('object_name'));
      const job = await rotateDataKey(fx, p.id, 'files', actor);
      expect(job.total).to.equal(3);
      await runRotation(fx, p.id, job.id, actor, { batchSize: 2 });
      const rows = await fx.db.withPractice(p.id, actor, (trx) => trx('stored_files').whereIn('id', fileIds).select('object_name', 'key_version'));
      expect(rows.every((r: { key_version: number }) => r.key_version === 2)).to.equal(true);
      const { existsSync } = await import('node:fs');
      for (const name of before) expect(existsSync(`${fx.filesDir}/${name.slice(0, 2)}/${name}`)).to.equal(false);
      for (const id of fileIds) {
        const back = await fx.db.withPractice(p.id, actor, async (trx) => readFileFully(await openFile(new PracticeCrypto(fx.keyring, trx, p.id), fx.files, id)));
        expect(back.equals(payloads.get(id)!)).to.equal(true);
      }
    });

    it('a second rotation of the same purpose cannot start while one is running', async () => {
      const job = await rotateDataKey(fx, p.id, 'fields', actor);
      let err: unknown;
      await rotateDataKey(fx, p.id, 'fields', actor).catch((e: unknown) => (err = e));
      expect(String(err)).to.include('already running');
      await runRotation(fx, p.id, job.id, actor);
    });
  });

  it('KEK rotation re-wraps data keys only and leaves data readable without the old KEK', async () => {
    const id = await insertRecord(a.id, { secret: 'survives KEK rotation', last_name: 'Kekman' });
    const k2 = newKek();
    const both = new Keyring(fx.provider({ ...fx.keks, k2 }, 'k2'));
    const n = await rewrapAll({ ...fx, keyring: both }, actor);
    expect(n).to.be.greaterThan(0);
    const kekIds = await fx.db.withPractice(a.id, actor, (trx) => trx('data_keys').whereNot({ status: 'destroyed' }).distinct().pluck('kek_id'));
    expect(kekIds).to.deep.equal(['k2']);
    const onlyNew = new Keyring(fx.provider({ k2 }, 'k2'));
    expect((await readRecord(a.id, id, onlyNew)).secret).to.equal('survives KEK rotation');
    fx.keks.k2 = k2;
    fx.keyring = onlyNew;
  });

  it('after shredding, reads fail with a clear typed error and other practices are untouched', async () => {
    const victim = await buildPractice(t.current.owner, { slug: 'enc-shred' });
    const id = await insertRecord(victim.id, { secret: 'to be shredded' });
    const file = await fx.db.withPractice(victim.id, actor, (trx) => saveFile(new PracticeCrypto(fx.keyring, trx, victim.id), fx.files, Readable.from([Buffer.from('x-ray')])));
    const survivor = await insertRecord(a.id, { secret: 'still here' });
    // A "backup" of the wrapped keys, taken before the shred.
    const superuser = createKnex(onDatabase(testCluster().superuserUrl, t.current.name), { poolMax: 1 });
    const backup = await superuser('data_keys').where({ practice_id: victim.id }).select('*');
    await superuser.destroy();

    expect(await shredPractice(fx, victim.id, actor)).to.be.greaterThan(0);
    const err = await expectError(readRecord(victim.id, id), KeyDestroyedError);
    expect(err.message).to.match(/destroyed \(crypto-shredded\)/);
    await expectError(
      fx.db.withPractice(victim.id, actor, async (trx) => readFileFully(await openFile(new PracticeCrypto(fx.keyring, trx, victim.id), fx.files, file.id))),
      KeyDestroyedError,
    );
    // Even a fresh process holding the KEK cannot: the wrapped keys are gone from the database.
    const fresh = new Keyring(fx.provider(fx.keks, 'k2'));
    await expectError(readRecord(victim.id, id, fresh), KeyDestroyedError);
    // Restoring the pre-shred key rows (as from an old backup) does not bring the data back.
    const restore = createKnex(onDatabase(testCluster().superuserUrl, t.current.name), { poolMax: 1 });
    try {
      await restore('data_keys').where({ practice_id: victim.id }).delete();
      await restore('data_keys').insert(backup);
    } finally {
      await restore.destroy();
    }
    await expectError(readRecord(victim.id, id, new Keyring(fx.provider(fx.keks, 'k2'))), KeyDestroyedError);
    expect((await readRecord(a.id, survivor)).secret).to.equal('still here');
    const events = await fx.db.withPractice(victim.id, actor, (trx) => trx('key_events').pluck('action'));
    expect(events).to.include('shredded');
  });

  it('no plaintext key material in the database, error messages or printed objects', async () => {
    // Collect every data key that ever existed (destroyed ones were captured in cache before; here
    // we take all still-wrapped ones) and every KEK.
    const secrets: Buffer[] = Object.values(fx.keks).map((k) => Buffer.from(k, 'base64'));
    const superuser = createKnex(onDatabase(testCluster().superuserUrl, t.current.name), { poolMax: 1 });
    try {
      const keyRows = await superuser('data_keys').whereNotNull('wrapped').select('practice_id', 'purpose', 'version', 'kek_id', 'wrapped');
      expect(keyRows.length).to.be.greaterThan(3);
      for (const r of keyRows) {
        try {
          secrets.push(await fx.keyring.provider.unwrap(r.kek_id, r.wrapped, wrapContext(r.practice_id, r.purpose as Purpose, r.version)));
        } catch (e) {
          // The shredded practice's restored "backup" rows can no longer be unwrapped: by design.
          expect(e).to.be.instanceOf(KeyDestroyedError);
        }
      }
      // The provider's per-practice key material is key material too.
      const { readdir, readFile } = await import('node:fs/promises');
      for (const f of (await readdir(fx.keysDir)).filter((n) => n.endsWith('.key'))) {
        secrets.push(Buffer.from((await readFile(`${fx.keysDir}/${f}`, 'utf8')).trim(), 'hex'));
      }
      const dump = await dumpDatabase(superuser);
      // What the logger would write if someone logged the errors or the keyring itself.
      const { lines, stream } = captureLogs();
      const log = createLogger('info', stream);
      for (const e of loggedErrors) log.error({ err: e }, 'crypto failure');
      log.info({ keyring: fx.keyring, provider: fx.keyring.provider }, 'keyring state');
      const haystacks = [dump, errorMessages.join('\n'), JSON.stringify(lines), inspect(fx.keyring, { depth: 10, showHidden: true }), JSON.stringify(fx.keyring)];
      for (const secret of secrets) {
        for (const needle of [secret.toString('hex'), secret.toString('base64'), secret.toString('latin1')]) {
          for (const hay of haystacks) expect(hay.includes(needle)).to.equal(false);
        }
      }
      expect(errorMessages.length).to.be.greaterThan(3);
    } finally {
      await superuser.destroy();
    }
  });
});

/** Every row of every table, as text (hex for bytea), read as superuser past RLS. */
async function dumpDatabase(knex: Knex): Promise<string> {
  const tables = await knex.raw<{ rows: { tablename: string }[] }>("SELECT tablename FROM pg_tables WHERE schemaname = 'public'");
  let out = '';
  for (const { tablename } of tables.rows) {
    const rows = await knex.raw<{ rows: { j: string }[] }>('SELECT row_to_json(t)::text AS j FROM ?? t', [tablename]);
    for (const r of rows.rows) out += `${r.j}\n`;
  }
  // bytea appears as "\\x…" hex in JSON; also include raw bytes rendered latin1.
  const bytes = await knex.raw<{ rows: { b: Buffer }[] }>('SELECT wrapped AS b FROM data_keys WHERE wrapped IS NOT NULL');
  return out + bytes.rows.map((r) => r.b.toString('latin1')).join('\n');
}
