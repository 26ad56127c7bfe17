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

describe('the front door (/)', () => {
  const t = useTestDatabase();

  it('with no practice yet, says where an operator starts', async () => {
    const res = await request(buildTestApp(t.current).app).get('/');
    expect(res.status).to.equal(200);
    expect(res.text).to.include('No practice has been set up').and.include('/operator/sign-in');
  });

  it('with one practice, leads straight to its sign-in; the evaluation install says where the demo credentials are', async () => {
    await buildPractice(t.current.owner, { slug: 'only-smiles', name: 'Only Smiles' });
    const app = buildTestApp(t.current, { SEED_DEMO: 'true', DATA_DIR: '/tmp/enamel-front-door' }).app;
    const res = await request(app).get('/');
    expect(res.status).to.equal(303);
    expect(res.headers.location).to.equal('/p/only-smiles/sign-in');
    const page = await request(app).get('/p/only-smiles/sign-in');
    expect(page.text).to.include('Staff sign-in').and.include('/tmp/enamel-front-door/demo-owner.txt');
    const plain = await request(buildTestApp(t.current).app).get('/p/only-smiles/sign-in');
    expect(plain.text).to.not.include('demo-owner.txt');
    expect((await request(app).get('/p/only-smiles')).text).to.include('href="/p/only-smiles/sign-in"');
  });

  it('with several, asks for the practice’s address name (never lists them) and leads to its sign-in; an unknown name is a clear 404', async () => {
    await buildPractice(t.current.owner, { slug: 'second-smiles', name: 'Second Smiles' });
    const app = buildTestApp(t.current).app;
    const start = await request(app).get('/');
    expect(start.status).to.equal(200);
    expect(start.text).to.include('Practice address name').and.not.include('Only Smiles').and.not.include('Second Smiles');
    for (const typed of ['second-smiles', ' Second-Smiles ', 'https://enamel.example/p/second-smiles/home']) {
      const go = await request(app).get('/').query({ practice: typed });
      expect(go.status, typed).to.equal(303);
      expect(go.headers.location).to.equal('/p/second-smiles/sign-in');
    }
    const unknown = await request(app).get('/').query({ practice: 'nobody-here' });
    expect(unknown.status).to.equal(404);
    expect(unknown.text).to.include('There is no practice at that address').and.include('aria-describedby="practice-err"');
  });
});
