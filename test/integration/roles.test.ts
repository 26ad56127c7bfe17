import { expect } from 'chai';
import { runtimeRoleProblems } from '../../src/db/bootstrap.js';
import { useTestDatabase } from '../support/db.js';

async function errorCode(work: Promise<unknown>): Promise<string | undefined> {
  try {
    await work;
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
}

describe('database roles', () => {
  const t = useTestDatabase();

  it('the runtime role is not a superuser, cannot bypass RLS and owns nothing', async () => {
    expect(await runtimeRoleProblems(t.current.app)).to.deep.equal([]);
  });

  it('flags the owner role as unsafe for the runtime connection', async () => {
    const problems = await runtimeRoleProblems(t.current.owner);
    expect(problems.join(' ')).to.match(/owns \d+ relations/);
  });

  for (const [what, sql] of [
    ['ALTER TABLE', 'ALTER TABLE locations ADD COLUMN x integer'],
    ['DROP TABLE', 'DROP TABLE locations'],
    ['TRUNCATE', 'TRUNCATE locations'],
    ['CREATE TABLE', 'CREATE TABLE intruder (id integer)'],
    ['DISABLE RLS', 'ALTER TABLE locations DISABLE ROW LEVEL SECURITY'],
    ['DROP POLICY', 'DROP POLICY tenant_isolation ON locations'],
    ['DELETE migrations', 'DELETE FROM knex_migrations'],
  ] as const) {
    it(`the runtime role cannot ${what}`, async () => {
      const code = await errorCode(t.current.app.raw(sql));
      // 42501 insufficient_privilege; 42P01-style codes would mean the test hit the wrong table.
      expect(code, sql).to.equal('42501');
    });
  }

  it('the owner role can still alter what it owns (the denial above is about the role)', async () => {
    expect(await errorCode(t.current.owner.raw('ALTER TABLE locations ADD COLUMN probe integer'))).to.equal(undefined);
    expect(await errorCode(t.current.owner.raw('ALTER TABLE locations DROP COLUMN probe'))).to.equal(undefined);
  });
});
