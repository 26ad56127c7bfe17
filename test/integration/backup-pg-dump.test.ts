import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createBackup, verifyBackup } from '../../src/backup/backup.js';
import { clientMajor } from '../../src/backup/pg-tools.js';
import { restoreBackup, RestoreRefusedError } from '../../src/backup/restore.js';
import { PracticeCrypto } from '../../src/crypto/encrypted-columns.js';
import { onDatabase } from '../../src/db/provision.js';
import { patientSecrets, type PatientRow } from '../../src/queries/patients.queries.js';
import { LocalFileStore } from '../../src/storage/file-store.js';
import { testCluster } from '../support/cluster.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { createTestDatabase, destroyTestDatabase, useTestDatabase, type TestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';

/**
 * The pg_dump path of backups (issue 17): where the installed client is at least the server's
 * version. The embedded server (18) is newer than Debian's client (15), so this runs against a
 * server pg_dump supports — `.ci/run` runs it with TEST_DATABASE_URL on the machine's PostgreSQL 15
 * when there is one — and otherwise says why it cannot run here.
 */
describe('backups with pg_dump (custom format)', function () {
  this.timeout(60_000);
  const t = useTestDatabase();
  let fx: CryptoFixture;
  let dir: string;
  const targets: TestDatabase[] = [];

  before(async function () {
    const tool = await clientMajor('pg_dump');
    const server = Number((await t.current.owner.raw<{ rows: { v: string }[] }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) / 10000;
    if (tool === undefined || tool < Math.floor(server) || (await clientMajor('pg_restore')) === undefined) {
      console.log(`      (pg_dump ${tool ?? 'not installed'} cannot back up this PostgreSQL ${Math.floor(server)}: run with TEST_DATABASE_URL on a server pg_dump supports)`);
      this.skip();
    }
    fx = await buildCryptoFixture(t.current);
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-pgdump-'));
  });

  after(async () => {
    for (const x of targets) await destroyTestDatabase(x);
    if (dir) await rm(dir, { recursive: true, force: true });
    await fx?.cleanup();
  });

  it('backs up with pg_dump, verifies, restores with pg_restore into a database with no tables, and checks it; refuses a migrated one', async () => {
    const p = await buildPractice(t.current.owner, { slug: 'pgdump-a' });
    const patient = await buildPatient(t.current.db, fx.keyring, p);
    const made = await createBackup({ url: onDatabase(testCluster().superuserUrl, t.current.name), files: fx.files }, dir, { provider: fx.keyring.provider, method: 'pg_dump' });
    expect(made.manifest.method).to.equal('pg_dump');
    expect(made.manifest.parts.map((x) => x.name)).to.deep.equal(['pg_dump/database']);
    expect(made.manifest.tables.find((x) => x.name === 'patients')!.rows).to.equal(1);
    expect((await verifyBackup(made.file, fx.keyring.provider)).ok).to.equal(true);

    const migrated = await createTestDatabase();
    targets.push(migrated);
    const refused = await restoreBackup(made.file, { ownerUrl: migrated.ownerUrl, runtimeUrl: migrated.runtimeUrl, files: new LocalFileStore(path.join(dir, 'f1')) }, { provider: fx.keyring.provider }).catch((e: Error) => e);
    expect(refused).to.be.instanceOf(RestoreRefusedError);

    const target = await createTestDatabase({ migrated: false });
    targets.push(target);
    const report = await restoreBackup(made.file, { ownerUrl: target.ownerUrl, runtimeUrl: target.runtimeUrl, files: new LocalFileStore(path.join(dir, 'f2')) }, { provider: fx.keyring.provider });
    expect(report.rows).to.equal(made.manifest.tables.reduce((n, x) => n + x.rows, 0));
    expect(report.decrypted).to.be.greaterThan(5);
    const family = await target.db.withPractice(p.id, { kind: 'system', id: 'test' }, async (trx) => {
      const row = await trx('patients').where({ id: patient.id }).first<PatientRow>();
      return (await patientSecrets.open(new PracticeCrypto(fx.keyring, trx, p.id), row)).family_name;
    });
    expect(family).to.equal(patient.familyName);
    const rls = `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`;
    expect((await target.owner.raw<{ rows: unknown[] }>(rls)).rows).to.deep.equal((await t.current.owner.raw<{ rows: unknown[] }>(rls)).rows);
    expect(await target.app('patients').count<{ n: string }[]>({ n: '*' }), 'the runtime role sees nothing without a practice').to.deep.equal([{ n: '0' }]);
  });
});
