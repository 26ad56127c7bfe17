import type { Knex } from 'knex';
import { expect } from 'chai';
import { expectedMigrations, migrateLatest, pendingMigrations, rollbackAll } from '../../src/db/migrations.js';
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
});
