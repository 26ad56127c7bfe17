import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { loadConfig } from '../../src/config/env.js';
import { createLogger } from '../../src/config/logger.js';
import { start } from '../../src/server.js';
import { useTestDatabase } from '../support/db.js';

const run = promisify(execFile);

function handshake(port: number, options: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const protocol = socket.getProtocol() ?? 'unknown';
      socket.end();
      resolve(protocol);
    });
    socket.once('error', reject);
  });
}

describe('built-in HTTPS listener', () => {
  const t = useTestDatabase();
  let dir: string;
  let port: number;
  let stop: () => Promise<void>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-tls-'));
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=localhost', '-keyout', key, '-out', cert]);
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: '0',
      DATABASE_URL: t.current.runtimeUrl,
      MIGRATE_ON_START: 'false',
      TLS_CERT_FILE: cert,
      TLS_KEY_FILE: key,
      ENAMEL_KEKS: `k1:${randomBytes(32).toString('base64')}`,
    });
    const running = await start(config, createLogger('silent'));
    port = (running.server.address() as AddressInfo).port;
    stop = running.stop;
  });

  after(async () => {
    await stop?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('accepts TLS 1.3 and 1.2', async () => {
    expect(await handshake(port, {})).to.equal('TLSv1.3');
    expect(await handshake(port, { maxVersion: 'TLSv1.2' })).to.equal('TLSv1.2');
  });

  it('refuses TLS 1.1 and a non-AEAD TLS 1.2 cipher', async () => {
    let old: unknown;
    await handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }).catch((e: unknown) => (old = e));
    expect(old, 'TLS 1.1 handshake').to.be.instanceOf(Error);
    let cbc: unknown;
    await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' }).catch((e: unknown) => (cbc = e));
    expect(cbc, 'CBC cipher handshake').to.be.instanceOf(Error);
  });

  it('serves pages over HTTPS with HSTS', async () => {
    const body = await new Promise<{ status: number; hsts: string | undefined }>((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        socket.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d: Buffer) => (data += d.toString()));
      socket.on('end', () =>
        resolve({
          status: Number(/^HTTP\/1\.1 (\d+)/.exec(data)?.[1]),
          hsts: /strict-transport-security: ([^\r]+)/i.exec(data)?.[1],
        }),
      );
      socket.once('error', reject);
    });
    expect(body.status).to.equal(200);
    expect(body.hsts).to.match(/max-age=31536000/);
  });
});
