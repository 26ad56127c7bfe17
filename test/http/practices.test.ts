import { expect } from 'chai';
import request from 'supertest';
import { buildTestApp } from '../support/app.js';
import { useTestDatabase } from '../support/db.js';
import { buildPractice } from '../support/factories.js';

describe('GET /p/:slug (practice front page, read through withPractice)', () => {
  const t = useTestDatabase();
  before(async () => {
    await buildPractice(t.current.owner, { slug: 'north-smiles', name: 'North Smiles', locations: ['North Office', 'Harbor Office'] });
    await buildPractice(t.current.owner, { slug: 'south-smiles', name: 'South Smiles', locations: ['South Office'] });
    await buildPractice(t.current.owner, { slug: 'closed-smiles', name: 'Closed Smiles', status: 'suspended' });
  });

  it("shows the practice and only its own locations", async () => {
    const res = await request(buildTestApp(t.current).app).get('/p/north-smiles');
    expect(res.status).to.equal(200);
    expect(res.text).to.include('North Smiles');
    expect(res.text).to.include('North Office');
    expect(res.text).to.include('Harbor Office');
    expect(res.text).to.not.include('South Office');
  });

  it('escapes practice data in the page', async () => {
    await buildPractice(t.current.owner, { slug: 'xss', name: '<script>alert(1)</script> Dental' });
    const res = await request(buildTestApp(t.current).app).get('/p/xss');
    expect(res.status).to.equal(200);
    expect(res.text).to.not.include('<script>alert(1)</script>');
    expect(res.text).to.include('&lt;script&gt;alert(1)&lt;/script&gt; Dental');
  });

  for (const [why, slug] of [
    ['an unknown slug', 'nobody-here'],
    ['a suspended practice', 'closed-smiles'],
    ['a malformed slug', 'UPPER_and_%27quotes%27'],
  ] as const) {
    it(`gives the 404 page for ${why}`, async () => {
      const res = await request(buildTestApp(t.current).app).get(`/p/${slug}`).set('Accept', 'text/html');
      expect(res.status).to.equal(404);
      expect(res.text).to.include('Page not found');
    });
  }
});
