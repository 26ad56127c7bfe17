import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ALL_PERMISSIONS, DEFAULT_ROLES, PRIVILEGED_PERMISSIONS, defaultRole, permission, permissionsTable, TABLE_END, TABLE_START } from '../../src/permissions.js';
import { requirePermission } from '../../src/routes/access.js';

describe('permission catalogue', () => {
  it('an unknown permission name throws, in the catalogue and in a route guard', () => {
    expect(() => permission('patients.raed')).to.throw(/unknown permission/);
    expect(() => requirePermission('audit.delete' as never)).to.throw(/unknown permission/);
    expect(permission('patients.read')).to.equal('patients.read');
  });

  it('names are area.verb, and every default role uses catalogue names only', () => {
    for (const p of ALL_PERMISSIONS) expect(p).to.match(/^[a-z]+\.[a-z_]+$/);
    for (const role of DEFAULT_ROLES) for (const p of role.permissions) expect(ALL_PERMISSIONS, `${role.key}: ${p}`).to.include(p);
    expect(PRIVILEGED_PERMISSIONS.every((p) => ALL_PERMISSIONS.includes(p))).to.equal(true);
  });

  it('has the default roles the issue lists, the owner with everything', () => {
    expect(DEFAULT_ROLES.map((r) => r.key)).to.have.members(['owner', 'provider', 'hygienist', 'treatment_coordinator', 'front_desk', 'billing', 'office_manager']);
    expect(defaultRole('owner')!.permissions).to.have.members(ALL_PERMISSIONS);
  });

  it('minimum necessary: front desk and billing see no clinical notes; billing sees fees; front desk sees intake', () => {
    for (const key of ['front_desk', 'billing', 'treatment_coordinator', 'office_manager']) {
      expect(defaultRole(key)!.permissions, key).to.not.include('clinical.read');
      expect(defaultRole(key)!.permissions, key).to.not.include('clinical.write');
    }
    expect(defaultRole('billing')!.permissions).to.include('billing.read');
    expect(defaultRole('front_desk')!.permissions).to.include.members(['patients.read', 'forms.review']);
    expect(defaultRole('front_desk')!.permissions).to.not.include('billing.read');
  });

  it('docs/SECURITY.md carries the table generated from the catalogue (run `npm run docs:permissions` after a change)', () => {
    const doc = readFileSync(new URL('../../docs/SECURITY.md', import.meta.url), 'utf8');
    const start = doc.indexOf(TABLE_START);
    const end = doc.indexOf(TABLE_END);
    expect(start, 'table markers').to.be.greaterThan(-1);
    expect(doc.slice(start, end + TABLE_END.length)).to.equal(permissionsTable());
  });
});
