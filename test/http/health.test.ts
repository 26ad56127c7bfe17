import { expect } from 'chai';
import request from 'supertest';
import { buildTestApp } from '../support/app.js';
import { useTestDatabase } from '../support/db.js';

describe('health, readiness and security.txt', () => {
  describe('on a migrated database', () => {
    const t = useTestDatabase();

    it('/healthz answers 200', async () => {
      const res = await request(buildTestApp(t.current).app).get('/healthz');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ok' });
    });

    it('/readyz answers 200 when the database is reachable and migrations are current', async () => {
      const res = await request(buildTestApp(t.current).app).get('/readyz');
      expect(res.status).to.equal(200);
      expect(res.body).to.deep.equal({ status: 'ready' });
    });

    it('/.well-known/security.txt names the configured contact and expiry', async () => {
      const { app } = buildTestApp(t.current, {
        SECURITY_CONTACT: 'security@practice.example',
        SECURITY_TXT_EXPIRES: '2027-06-30T00:00:00Z',
        PUBLIC_URL: 'https://enamel.practice.example',
      });
      const res = await request(app).get('/.well-known/security.txt');
      expect(res.status).to.equal(200);
      expect(res.headers['content-type']).to.match(/^text\/plain/);
      expect(res.text).to.include('Contact: mailto:security@practice.example');
      expect(res.text).to.include('Expires: 2027-06-30T00:00:00.000Z');
      expect(res.text).to.include('Canonical: https://enamel.practice.example/.well-known/security.txt');
    });
  });

  describe('on a database with migrations pending', () => {
    const t = useTestDatabase({ migrated: false });

    it('/readyz answers 503 with the reason', async () => {
      const res = await request(buildTestApp(t.current).app).get('/readyz');
      expect(res.status).to.equal(503);
      expect(res.body).to.include({ status: 'unavailable', reason: 'migrations_pending' });
    });
  });
});
