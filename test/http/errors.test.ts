import { expect } from 'chai';
import request from 'supertest';
import { createKnex } from '../../src/db/knex.js';
import { createDb } from '../../src/db/tenant.js';
import { buildTestApp } from '../support/app.js';
import { useTestDatabase } from '../support/db.js';

describe('error pages', () => {
  const t = useTestDatabase();

  it('an unknown route gives the 404 page with a request id', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app).get('/definitely/not/here').set('Accept', 'text/html');
    expect(res.status).to.equal(404);
    expect(res.headers['content-type']).to.match(/text\/html/);
    expect(res.text).to.include('Page not found');
    expect(res.text).to.include(res.headers['x-request-id'] as string);
  });

  it('a thrown error gives the generic 500 page with a request id, no stack and no error text', async () => {
    // A real failure: the database pool is closed under the app.
    const broken = createKnex(t.current.runtimeUrl);
    await broken.destroy();
    const { app, logs } = buildTestApp({ db: createDb(broken), sessionStore: t.current.sessionStore });
    const res = await request(app).get('/p/some-practice').set('Accept', 'text/html');
    expect(res.status).to.equal(500);
    expect(res.text).to.include('Something went wrong');
    const requestId = res.headers['x-request-id'] as string;
    expect(res.text).to.include(requestId);
    expect(res.text).to.not.match(/at .+\.(ts|js):\d+/); // no stack frames
    expect(res.text).to.not.match(/pool|knex|Error:/i);
    expect(res.headers['cache-control']).to.equal('no-store');
    const logged = logs.find((l) => l.msg === 'unhandled error');
    expect(logged?.reqId).to.equal(requestId);
  });

  it('answers JSON clients with JSON errors', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app).get('/nothing').set('Accept', 'application/json');
    expect(res.status).to.equal(404);
    expect(res.body).to.deep.include({ status: 404, error: 'Page not found' });
  });

  it('an oversized form body gets 413, not 500', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app)
      .post('/')
      .type('form')
      .set('Accept', 'text/html')
      .send(`field=${'a'.repeat(100_000)}`);
    expect(res.status).to.equal(413);
    expect(res.text).to.include('Request too large');
  });

  it('a malformed form body gets a 4xx page, not 500', async () => {
    const { app } = buildTestApp(t.current);
    const res = await request(app).post('/').set('Content-Type', 'application/x-www-form-urlencoded; charset=koi8-x').send('a=b');
    expect(res.status).to.be.within(400, 499);
  });
});
