import { expect } from 'chai';
import { createDb, withPractice, ANONYMOUS } from '../../src/db/tenant.js';
import { createKnex } from '../../src/db/knex.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';
import { useTestDatabase } from '../support/db.js';

describe('tenant isolation (runtime role, row-level security)', () => {
  const t = useTestDatabase();
  let a: BuiltPractice;
  let b: BuiltPractice;

  before(async () => {
    a = await buildPractice(t.current.owner, { slug: 'alpha', locations: ['Alpha North', 'Alpha South'] });
    b = await buildPractice(t.current.owner, { slug: 'bravo', locations: ['Bravo Central'] });
  });

  it('inside withPractice(A) sees only practice A rows in every tenant table', async () => {
    const seen = await t.current.db.withPractice(a.id, ANONYMOUS, async (trx) => ({
      practices: (await trx('practices').select('id')).map((r: { id: string }) => r.id),
      locations: (await trx('locations').select('practice_id')).map((r: { practice_id: string }) => r.practice_id),
      settings: (await trx('practice_settings').select('practice_id')).map((r: { practice_id: string }) => r.practice_id),
    }));
    expect(seen.practices).to.deep.equal([a.id]);
    expect(seen.locations).to.have.length(2);
    expect(seen.locations.every((id) => id === a.id)).to.equal(true);
    expect(seen.settings).to.deep.equal([a.id]);
  });

  it('cannot read practice B rows inside withPractice(A), even by primary key', async () => {
    const found = await t.current.db.withPractice(a.id, ANONYMOUS, (trx) => trx('locations').where({ id: b.locationIds[0] }).first());
    expect(found).to.equal(undefined);
  });

  it('cannot write a row for practice B, or move a row to B, inside withPractice(A)', async () => {
    let insertError: unknown;
    await t.current.db
      .withPractice(a.id, ANONYMOUS, (trx) => trx('locations').insert({ practice_id: b.id, name: 'Sneaky' }))
      .catch((e: unknown) => (insertError = e));
    expect((insertError as { code?: string }).code).to.equal('42501'); // row-level security violation

    let updateError: unknown;
    await t.current.db
      .withPractice(a.id, ANONYMOUS, (trx) => trx('locations').where({ id: a.locationIds[0] }).update({ practice_id: b.id }))
      .catch((e: unknown) => (updateError = e));
    expect((updateError as { code?: string }).code).to.equal('42501');

    const updatedInB = await t.current.db.withPractice(a.id, ANONYMOUS, (trx) =>
      trx('locations').where({ id: b.locationIds[0] }).update({ name: 'Hijacked' }),
    );
    expect(updatedInB).to.equal(0);
    const bLocations = await t.current.db.withPractice(b.id, ANONYMOUS, (trx) => trx('locations').pluck('name'));
    expect(bLocations).to.deep.equal(['Bravo Central']);
  });

  it('sees no tenant rows at all without a practice context', async () => {
    for (const table of ['practices', 'locations', 'practice_settings']) {
      const rows = await t.current.app(table).select('*');
      expect(rows, table).to.have.length(0);
    }
  });

  it('does not leak the context to the next transaction on the same pooled connection', async () => {
    const single = createKnex(t.current.runtimeUrl, { poolMax: 1 });
    try {
      const inside = await withPractice(single, a.id, ANONYMOUS, (trx) => trx('locations').count<{ count: string }[]>('* as count'));
      expect(Number(inside[0]!.count)).to.equal(2);
      const after = await single('locations').count<{ count: string }[]>('* as count');
      expect(Number(after[0]!.count)).to.equal(0);
      const setting = await single.raw<{ rows: { v: string | null }[] }>("SELECT current_setting('app.practice_id', true) AS v");
      expect(setting.rows[0]!.v ?? '').to.equal('');
    } finally {
      await single.destroy();
    }
  });

  it('the one-statement staff session check reads only its practice and leaves no context on the connection', async () => {
    const { staffSessionFacts } = await import('../../src/queries/session-facts.queries.js');
    const { buildStaff } = await import('../support/staff.js');
    const { buildCryptoFixture } = await import('../support/crypto.js');
    const fx = await buildCryptoFixture(t.current);
    const single = createKnex(t.current.runtimeUrl, { poolMax: 1 });
    try {
      const staff = await buildStaff(t.current, { keyring: fx.keyring, now: Date.now }, a, { roles: ['front_desk'], locations: [a.locationIds[1]!] });
      const facts = await staffSessionFacts(single, a.id, staff.id, 'alpha');
      expect(facts.user?.status).to.equal('active');
      expect(facts.slugPracticeId).to.equal(a.id);
      expect(facts.locations).to.deep.equal([a.locationIds[1]]);
      expect(facts.roles.map((r) => r.key)).to.deep.equal(['front_desk']);
      // The same user id asked for under practice B: B's rows only, so no such user there.
      const elsewhere = await staffSessionFacts(single, b.id, staff.id, 'alpha');
      expect(elsewhere.user, 'another practice sees no such user').to.equal(undefined);
      expect(elsewhere.slugPracticeId, 'the slug still names practice A, which is not the session\'s').to.equal(a.id);
      expect((await staffSessionFacts(single, a.id, staff.id, 'no-such-practice')).slugPracticeId).to.equal(undefined);
      const after = await single('locations').count<{ count: string }[]>('* as count');
      expect(Number(after[0]!.count), 'no context after the statement').to.equal(0);
      const setting = await single.raw<{ rows: { v: string | null }[] }>("SELECT current_setting('app.practice_id', true) AS v");
      expect(setting.rows[0]!.v ?? '').to.equal('');
    } finally {
      await single.destroy();
      await fx.cleanup();
    }
  });

  it('records the actor for the transaction and rolls back everything when the work throws', async () => {
    const actor = await t.current.db.withPractice(a.id, { kind: 'user', id: 'u-123' }, async (trx) => {
      const r = await trx.raw<{ rows: { v: string }[] }>("SELECT current_setting('app.actor') AS v");
      return r.rows[0]!.v;
    });
    expect(actor).to.equal('user:u-123');

    let thrown: unknown;
    await t.current.db
      .withPractice(a.id, ANONYMOUS, async (trx) => {
        await trx('locations').insert({ practice_id: a.id, name: 'Half-made' });
        throw new Error('fails midway');
      })
      .catch((e: unknown) => (thrown = e));
    expect((thrown as Error).message).to.equal('fails midway');
    const names = await t.current.db.withPractice(a.id, ANONYMOUS, (trx) => trx('locations').pluck('name'));
    expect(names).to.not.include('Half-made');
  });

  it('refuses a practice id that is not a UUID and an actor id that is free text', async () => {
    const db = createDb(t.current.app);
    let e1: unknown;
    await db.withPractice("x' OR 1=1 --", ANONYMOUS, async () => 1).catch((e: unknown) => (e1 = e));
    expect(e1).to.be.instanceOf(TypeError);
    let e2: unknown;
    await db.withPractice(a.id, { kind: 'user', id: 'Jane Doe' }, async () => 1).catch((e: unknown) => (e2 = e));
    expect(e2).to.be.instanceOf(TypeError);
  });
});
