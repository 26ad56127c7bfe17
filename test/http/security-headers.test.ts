import { expect } from 'chai';
import request from 'supertest';
import { buildTestApp } from '../support/app.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice } from '../support/factories.js';

function nonceOf(csp: string): string {
  const m = /script-src 'self' 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp);
  expect(m, csp).to.not.equal(null);
  return m![1]!;
}

describe('security headers', () => {
  const t = useTestDatabase();
  before(async () => {
    await buildPractice(t.current.owner, { slug: 'headers' });
  });

  for (const path of ['/', '/p/headers', '/no-such-page']) {
    it(`every header is present on ${path}`, async () => {
      const { app } = buildTestApp(t.current);
      const res = await request(app).get(path);
      const csp = res.headers['content-security-policy'] as string;
      expect(csp).to.include("default-src 'self'");
      expect(csp).to.include("object-src 'none'");
      expect(csp).to.include("base-uri 'none'");
      expect(csp).to.include("frame-ancestors 'none'");
      expect(csp).to.not.include('unsafe-inline');
      expect(csp).to.not.include('unsafe-eval');
      nonceOf(csp);
      expect(res.headers['referrer-policy']).to.equal('no-referrer');
      expect(res.headers['x-content-type-options']).to.equal('nosniff');
      expect(res.headers['x-frame-options']).to.equal('DENY');
      expect(res.headers['cache-control']).to.equal('no-store');
      expect(res.headers['x-powered-by']).to.equal(undefined);
      expect(res.headers['x-request-id']).to.match(/^[0-9a-f-]{36}$/);
      // Plain HTTP: no HSTS (browsers ignore it there; it is sent on HTTPS responses).
      expect(res.headers['strict-transport-security']).to.equal(undefined);
    });
  }

  it('carries a fresh CSP nonce on every response', async () => {
    const { app } = buildTestApp(t.current);
    const nonces = new Set<string>();
    for (let i = 0; i < 5; i++) nonces.add(nonceOf((await request(app).get('/')).headers['content-security-policy'] as string));
    expect(nonces.size).to.equal(5);
  });

  it('sends HSTS of at least a year on HTTPS requests from a trusted proxy only', async () => {
    const trusted = buildTestApp(t.current, { TRUST_PROXY: 'loopback' }).app;
    const viaProxy = await request(trusted).get('/').set('X-Forwarded-Proto', 'https');
    const hsts = viaProxy.headers['strict-transport-security'] as string;
    const maxAge = Number(/max-age=(\d+)/.exec(hsts)?.[1]);
    expect(maxAge).to.be.at.least(31_536_000);

    // CASE: without TRUST_PROXY a client cannot claim HTTPS with a forged header.
    const untrusted = buildTestApp(t.current).app;
    const forged = await request(untrusted).get('/').set('X-Forwarded-Proto', 'https');
    expect(forged.headers['strict-transport-security']).to.equal(undefined);
  });

  it('takes the client IP from X-Forwarded-For only behind a trusted proxy', async () => {
    const untrusted = buildTestApp(t.current);
    await request(untrusted.app).get('/').set('X-Forwarded-For', '203.0.113.9');
    expect(untrusted.logs.find((l) => l.msg === 'request')?.ip).to.not.equal('203.0.113.9');

    const trusted = buildTestApp(t.current, { TRUST_PROXY: 'loopback' });
    await request(trusted.app).get('/').set('X-Forwarded-For', '203.0.113.9');
    expect(trusted.logs.find((l) => l.msg === 'request')?.ip).to.equal('203.0.113.9');
  });

  it('refuses TRACE with 405', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app).trace('/');
    expect(res.status).to.equal(405);
    expect(res.headers['allow']).to.not.include('TRACE');
  });

  it('serves static assets locally with a cache lifetime (not no-store) and nosniff', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app).get('/static/css/app.css');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/text\/css/);
    expect(res.headers['cache-control']).to.match(/max-age=\d+/);
    expect(res.headers['x-content-type-options']).to.equal('nosniff');
  });

  it('pages reference no third-party resources', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app).get('/p/headers');
    expect(res.text).to.not.match(/(src|href)="(https?:)?\/\//);
  });
});

describe('static files', () => {
  const t = useTestDatabase();

  it('never lists directories or serves dotfiles', async () => {
    const { app } = buildTestApp(t.current);
    for (const path of ['/static/', '/static/css/', '/static/.gitkeep', '/static/../package.json']) {
      const res = await request(app).get(path);
      expect(res.status, path).to.equal(404);
      expect(res.text, path).to.include('Page not found');
      expect(res.text, path).to.not.match(/Index of|>app\.css</);
    }
  });
});
