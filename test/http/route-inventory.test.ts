import { expect } from 'chai';
import { Router } from 'express';
import { csrfProtection } from '../../src/middleware/csrf.js';
import { parseUpload } from '../../src/uploads/multipart.js';
import { accessOf, requirePermission } from '../../src/routes/access.js';
import { buildRouter } from '../../src/routes/index.js';
import { createDb } from '../../src/db/tenant.js';
import { createKnex } from '../../src/db/knex.js';
import { testConfig } from '../support/app.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean>; stack: { handle: unknown }[] };
  handle?: { stack?: Layer[] };
}

/** Every route in a router (recursing into mounted routers), with its first handler. */
function walk(stack: Layer[], found: { route: string; first: unknown }[] = []): { route: string; first: unknown }[] {
  for (const layer of stack) {
    if (layer.route) {
      const methods = Object.keys(layer.route.methods).join(',').toUpperCase();
      found.push({ route: `${methods} ${layer.route.path}`, first: layer.route.stack[0]?.handle });
    } else if (layer.handle?.stack) {
      walk(layer.handle.stack, found);
    }
  }
  return found;
}

describe('route inventory', () => {
  const knex = createKnex('postgres://unused@127.0.0.1:1/unused');
  after(() => knex.destroy());

  it('every route declares its access as its first handler', () => {
    const router = buildRouter({ config: testConfig(), db: createDb(knex), keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now }) as Router & { stack: Layer[] };
    const routes = walk(router.stack);
    expect(routes.length).to.be.greaterThan(3);
    const undeclared = routes.filter((r) => !accessOf(r.first)).map((r) => r.route);
    expect(undeclared, 'routes without an access declaration').to.deep.equal([]);
    // Sign-in routes are public by design; the signed-in pages are not; admin pages name their permission.
    expect(accessOf(routes.find((r) => r.route === 'GET /p/:slug/home')!.first)).to.deep.equal({ kind: 'signed_in' });
    expect(accessOf(routes.find((r) => r.route === 'POST /p/:slug/users/:id/deactivate')!.first)).to.deep.equal({ kind: 'permission', permission: 'users.manage' });
    expect(accessOf(routes.find((r) => r.route === 'POST /p/:slug/roles/:id')!.first)).to.deep.equal({ kind: 'permission', permission: 'roles.manage' });
  });

  it('every route that takes a record id is guarded by a permission', () => {
    const router = buildRouter({ config: testConfig(), db: createDb(knex), keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now }) as Router & { stack: Layer[] };
    const withIds = walk(router.stack).filter((r) => r.route.includes('/:id'));
    expect(withIds.length).to.be.greaterThan(5);
    // Patient pages take ids too (a form of the link): they are bound to the verified link, never open.
    for (const r of withIds) expect(accessOf(r.first)?.kind, r.route).to.equal(r.route.includes(' /operator/') ? 'operator' : r.route.includes(' /portal/') ? 'patient_link' : 'permission');
  });

  it('practice pages and the operator console never share a marker: no /operator route is open to staff, and no /p route to operators', () => {
    const router = buildRouter({ config: testConfig(), db: createDb(knex), keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now }) as Router & { stack: Layer[] };
    for (const r of walk(router.stack)) {
      const kind = accessOf(r.first)?.kind;
      if (r.route.includes(' /operator') && kind !== 'public') expect(kind, r.route).to.equal('operator');
      if (r.route.includes(' /p/')) expect(kind, r.route).to.not.equal('operator');
    }
  });

  it('every state-changing route checks the CSRF token before its handler', () => {
    const router = buildRouter({ config: testConfig(), db: createDb(knex), keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now }) as Router & { stack: Layer[] };
    const posts = (router.stack as Layer[]).filter((l) => l.route && !l.route.methods.get && !l.route.methods.head);
    expect(posts.length).to.be.greaterThan(10);
    // Provider callbacks carry a signature instead of a token; they are the only exception, and few.
    const webhooks = posts.filter((l) => accessOf(l.route!.stack[0]?.handle)?.kind === 'webhook').map((l) => l.route!.path);
    expect(webhooks).to.deep.equal(['/hooks/sms/:slug']);
    for (const l of posts.filter((p) => accessOf(p.route!.stack[0]?.handle)?.kind !== 'webhook')) {
      // Multipart routes parse the body (under limits) first: the token is a field of it.
      const at = l.route!.stack[1]?.handle === parseUpload ? 2 : 1;
      expect(l.route!.stack[at]?.handle, l.route!.path).to.equal(csrfProtection);
    }
  });

  it('the walker notices a route without a declaration, also in a throwaway router mounted inside', () => {
    const router = buildRouter({ config: testConfig(), db: createDb(knex), keyring: undefined as never, files: undefined as never, fileUrlKey: Buffer.alloc(32), clock: Date.now }) as Router & { stack: Layer[] };
    router.get('/forgotten', (_req, res) => res.send('oops'));
    const throwaway = Router();
    throwaway.post('/p/:slug/things/:id', (_req, res) => res.send('oops'));
    throwaway.get('/p/:slug/ok', requirePermission('patients.read'), (_req, res) => res.send('fine'));
    router.use(throwaway);
    const undeclared = walk(router.stack).filter((r) => !accessOf(r.first)).map((r) => r.route);
    expect(undeclared).to.deep.equal(['GET /forgotten', 'POST /p/:slug/things/:id']);
  });
});
