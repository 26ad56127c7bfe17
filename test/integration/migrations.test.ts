import type { Knex } from 'knex';
import { expect } from 'chai';
import { expectedMigrations, migrateLatest, migratorConfig, pendingMigrations, rollbackAll } from '../../src/db/migrations.js';
import { withPractice } from '../../src/db/tenant.js';
import { buildPractice } from '../support/factories.js';
import { useTestDatabase } from '../support/db.js';

async function tables(t: { owner: Knex }): Promise<string[]> {
  const r = await t.owner.raw<{ rows: { tablename: string }[] }>(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'knex_%' ORDER BY tablename",
  );
  return r.rows.map((x) => x.tablename);
}

describe('migrations', () => {
  const t = useTestDatabase({ migrated: false });

  it('migrate → rollback → migrate leaves the same schema', async () => {
    const all = await expectedMigrations();
    expect(all.length).to.be.greaterThan(0);
    expect(await pendingMigrations(t.current.owner)).to.deep.equal(all);

    expect(await migrateLatest(t.current.owner)).to.deep.equal(all);
    const first = await tables(t.current);
    expect(first).to.include.members(['practices', 'locations', 'practice_settings']);
    expect(await pendingMigrations(t.current.app)).to.deep.equal([]);

    expect(await rollbackAll(t.current.owner)).to.have.members(all);
    expect(await tables(t.current)).to.deep.equal([]);

    await migrateLatest(t.current.owner);
    expect(await tables(t.current)).to.deep.equal(first);
    expect(await pendingMigrations(t.current.app)).to.deep.equal([]);
  });

  it('every tenant table has row-level security enabled and forced', async () => {
    const r = await t.current.owner.raw<{ rows: { relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }[] }>(
      `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
         FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'practice_id'
        WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace`,
    );
    expect(r.rows.length).to.be.greaterThan(0);
    for (const row of r.rows) {
      expect(row.relrowsecurity, row.relname).to.equal(true);
      expect(row.relforcerowsecurity, row.relname).to.equal(true);
    }
  });

  it('the office-documents migration gives the existing front desk, billing and office manager roles documents.office, and no other role', async () => {
    await migrateLatest(t.current.owner);
    const p = await buildPractice(t.current.owner, { slug: 'migrate-office-docs' });
    const roles = (): Promise<Record<string, string[]>> =>
      withPractice(t.current.owner, p.id, { kind: 'system', id: 'test' }, async (trx) => Object.fromEntries((await trx('roles').select('key', 'permissions')).map((r: { key: string; permissions: string[] }) => [r.key, r.permissions])));
    const name = '20261203000023_office_documents';
    await t.current.owner.migrate.down({ ...migratorConfig(), name });
    const before = await roles();
    expect(Object.values(before).flat(), 'rolled back: nobody holds it').to.not.include('documents.office');
    await t.current.owner.migrate.up({ ...migratorConfig(), name });
    const after = await roles();
    for (const key of ['front_desk', 'billing', 'office_manager']) expect(after[key], key).to.include('documents.office');
    for (const key of ['provider', 'hygienist', 'treatment_coordinator']) expect(after[key], key).to.deep.equal(before[key]);
  });
});
