import { expect } from 'chai';
import { AuthorizationNotChecked, withAuthorizationRecord } from '../../src/policies/authorized.js';
import { authorize, type StaffActor } from '../../src/policies/index.js';
import { staffWork } from '../../src/services/staff-work.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice, type BuiltPractice } from '../support/factories.js';

/** Mastodon's verify_authorized: a staff action that never asks the policy fails, and writes nothing. */
describe('a staff action must ask authorize()', () => {
  const t = useTestDatabase();
  let p: BuiltPractice;
  let actor: StaffActor;

  before(async () => {
    p = await buildPractice(t.current.owner, { slug: 'verify-authz' });
    actor = { kind: 'user', id: '10000000-0000-4000-8000-0000000000aa', practiceId: p.id, slug: p.slug, displayName: 'A', permissions: new Set(['settings.manage']), locations: 'all', isOwner: false, authAt: Date.now() };
  });

  const rename = (name: string) => staffWork(t.current.db, actor, (trx) => trx('locations').where({ id: p.locationIds[0] }).update({ name }));
  const name = () => t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('locations').where({ id: p.locationIds[0] }).first('name')).then((r) => r.name as string);

  it('throws when the work completes without a check, and rolls the work back', async () => {
    const before = await name();
    let thrown: unknown;
    await withAuthorizationRecord(() => rename('Forgotten check')).catch((e: unknown) => (thrown = e));
    expect(thrown).to.be.instanceOf(AuthorizationNotChecked);
    expect(await name(), 'nothing written').to.equal(before);
  });

  it('passes when the check ran before the work, or inside it', async () => {
    await withAuthorizationRecord(async () => {
      authorize(actor, 'practice.practiceDetails');
      await rename('Checked before');
    });
    expect(await name()).to.equal('Checked before');
    await withAuthorizationRecord(() =>
      staffWork(t.current.db, actor, async (trx) => {
        if (!authorize(actor, 'practice.practiceDetails')) throw new Error('refused');
        await trx('locations').where({ id: p.locationIds[0] }).update({ name: 'Checked inside' });
      }),
    );
    expect(await name()).to.equal('Checked inside');
  });

  it('outside a staff request (jobs, the CLI) there is nothing to verify', async () => {
    await rename('From a job');
    expect(await name()).to.equal('From a job');
  });
});
