import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import type { CryptoFixture } from '../support/crypto.js';
import { type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, type BuiltStaff } from '../support/staff.js';

describe('roles page: permission matrix, edits, no escalation', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'roles-http' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let owner: BuiltStaff;
  let built: StaffApp['built'];
  const staff = (options: Parameters<typeof buildStaff>[3]) => buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, options);
  const role = (key: string): Promise<{ id: string; name: string; permissions: string[] }> => inPractice((trx) => trx('roles').where({ key }).first('id', 'name', 'permissions'));
  const roleAudits = (outcome: string) => t.current.owner('audit_events').where({ practice_id: p.id, action: 'role_change', outcome }).select('actor_id', 'resource_id');

  before(async () => {
    owner = await staff({ owner: true });
  });

  it('shows every default role against every permission', async () => {
    const b = await signIn(built.app, p.slug, owner, clock);
    const page = await b.agent.get(`/p/${p.slug}/roles`);
    expect(page.status).to.equal(200);
    for (const name of ['Owner', 'Provider (dentist)', 'Hygienist / assistant', 'Treatment coordinator', 'Front desk', 'Billing', 'Office manager']) expect(page.text).to.include(name);
    expect(page.text).to.include('<code>breakglass.use</code>');
  });

  it('privilege escalation through the roles page is refused (403, unchanged, audited)', async () => {
    const manager = await staff({ roles: ['office_manager'] });
    const b = await signIn(built.app, p.slug, manager, clock);
    const billing = await role('billing');
    const form = await b.form(`/p/${p.slug}/roles/${billing.id}`);
    expect(form.text).to.match(/value="practice.export"[^>]*disabled/);

    // 1. Adding a permission the manager lacks to a role (even a role the manager may edit).
    const grant = await b.agent.post(`/p/${p.slug}/roles/${billing.id}`).type('form').send({ _csrf: form.token, name: billing.name, permissions: [...billing.permissions, 'practice.export'] });
    expect(grant.status).to.equal(403);
    expect(grant.text).to.include('You cannot grant permissions you do not hold yourself: practice.export.');
    expect((await role('billing')).permissions).to.deep.equal(billing.permissions);

    // 2. A new role with more than the manager holds.
    const create = await b.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: form.token, name: 'Sneaky', permissions: ['patients.read', 'breakglass.use'] });
    expect(create.status).to.equal(403);
    expect(await inPractice((trx) => trx('roles').where({ name: 'Sneaky' }).first('id'))).to.equal(undefined);

    // 3. Editing a role that holds what the manager lacks (the provider's clinical permissions).
    const provider = await role('provider');
    const strip = await b.agent.post(`/p/${p.slug}/roles/${provider.id}`).type('form').send({ _csrf: form.token, name: provider.name, permissions: ['patients.read'] });
    expect(strip.status).to.equal(403);
    expect((await role('provider')).permissions).to.deep.equal(provider.permissions);

    // 4. The owner role, by anyone.
    const ownerRole = await role('owner');
    const o = await b.agent.post(`/p/${p.slug}/roles/${ownerRole.id}`).type('form').send({ _csrf: form.token, name: 'Owner', permissions: [] });
    expect(o.status).to.equal(403);

    // 5. Giving oneself the office-manager role plus a role with more (assignment) — also refused.
    const self = await b.agent.post(`/p/${p.slug}/users/${manager.id}/access`).type('form').send({ _csrf: form.token, roleIds: [(await role('office_manager')).id, provider.id] });
    expect(self.status).to.equal(404);

    const denied = await roleAudits('denied');
    expect(denied.filter((r: { actor_id: string }) => r.actor_id === manager.id).length).to.be.greaterThanOrEqual(4);
  });

  it('a role within the editor\u2019s own permissions can be created and edited; bad input is a form error', async () => {
    const manager = await staff({ roles: ['office_manager'] });
    const b = await signIn(built.app, p.slug, manager, clock);
    const form = await b.form(`/p/${p.slug}/roles/new`);
    const empty = await b.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: form.token, name: '  ', permissions: ['patients.read'] });
    expect(empty.status).to.equal(400);
    expect(empty.text).to.include('Give the role a name.');
    const unknown = await b.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: form.token, name: 'Odd', permissions: ['patients.read', 'audit.delete'] });
    expect(unknown.status).to.equal(400);
    expect(unknown.text).to.include('Choose permissions from the list.');
    const ok = await b.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: form.token, name: 'Scheduler', description: 'Books visits', permissions: ['patients.read', 'patients.write'] });
    expect(ok.status).to.equal(303);
    const created = await inPractice((trx) => trx('roles').where({ name: 'Scheduler' }).first('id', 'permissions', 'is_system'));
    expect(created).to.deep.include({ permissions: ['patients.read', 'patients.write'], is_system: false });
    const dup = await b.agent.post(`/p/${p.slug}/roles`).type('form').send({ _csrf: form.token, name: 'scheduler', permissions: [] });
    expect(dup.status).to.equal(400);
    expect(dup.text).to.include('already exists');
    expect((await roleAudits('allowed')).map((r: { resource_id: string }) => r.resource_id)).to.include(created.id);
  });

  it('a role change applies on the holder\u2019s next request', async () => {
    const manager = await staff({ roles: ['office_manager'] });
    const m = await signIn(built.app, p.slug, manager, clock);
    expect((await m.agent.get(`/p/${p.slug}/users`)).status).to.equal(200);
    const b = await signIn(built.app, p.slug, owner, clock);
    const om = await role('office_manager');
    const form = await b.form(`/p/${p.slug}/roles/${om.id}`);
    const saved = await b.agent.post(`/p/${p.slug}/roles/${om.id}`).type('form').send({ _csrf: form.token, name: om.name, permissions: om.permissions.filter((x) => x !== 'users.manage') });
    expect(saved.status).to.equal(303);
    expect((await m.agent.get(`/p/${p.slug}/users`)).status).to.equal(404);
    expect((await m.agent.get(`/p/${p.slug}/roles`)).status).to.equal(200);
  });
});
