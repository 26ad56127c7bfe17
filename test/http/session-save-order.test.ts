import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import express from 'express';
import session from 'express-session';
import { saveSessionBeforeRedirect } from '../../src/auth/session.js';

/**
 * express-session sends a response's headers before its store write finishes; a browser following
 * a redirect then reads the session as it was. A redirect from a request that changed its session
 * must wait for the write (a store that holds its write until the test lets it go shows the order).
 */
describe('a redirect waits for the session write', () => {
  class GatedStore extends session.MemoryStore {
    release: (() => void) | undefined;
    written: Promise<void>;
    private signal!: () => void;
    constructor() {
      super();
      this.written = new Promise((r) => (this.signal = r));
    }
    override set(sid: string, sess: session.SessionData, cb?: (err?: unknown) => void): void {
      this.release = () => super.set(sid, sess, cb);
      this.signal();
    }
  }

  let lastResponse: express.Response | undefined;
  async function serve(store: GatedStore, withFix: boolean) {
    const app = express();
    app.use(session({ secret: 'test-secret-test-secret', store, resave: false, saveUninitialized: false }));
    if (withFix) app.use(saveSessionBeforeRedirect());
    app.post('/stash', (req, res) => {
      lastResponse = res;
      (req.session as unknown as { stash: string }).stash = 'the link';
      res.redirect(303, '/next');
    });
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, port: (server.address() as AddressInfo).port };
  }

  const post = (port: number) => {
    let status: number | undefined;
    const done = new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/stash', method: 'POST' }, (res) => {
        status = res.statusCode;
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      req.on('error', reject);
      req.end();
    });
    return { done, status: () => status };
  };

  it('without the fix the headers are out while the write is still pending (why the fix exists)', async () => {
    const store = new GatedStore();
    const { server, port } = await serve(store, false);
    const r = post(port);
    await store.written;
    await new Promise((resolve) => setImmediate(resolve));
    expect(lastResponse!.headersSent, 'the 303 went out before the session was written').to.equal(true);
    store.release!();
    expect(await r.done).to.equal(303);
    server.close();
  });

  it('with saveSessionBeforeRedirect nothing is sent until the session is written', async () => {
    const store = new GatedStore();
    const { server, port } = await serve(store, true);
    const r = post(port);
    await store.written;
    await new Promise((resolve) => setImmediate(resolve));
    expect(lastResponse!.headersSent, 'no header before the write').to.equal(false);
    expect(r.status()).to.equal(undefined);
    store.release!();
    expect(await r.done).to.equal(303);
    server.close();
  });
});
