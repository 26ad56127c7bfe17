/**
 * Crypto benchmark: field cipher vs raw AES-256-GCM, encrypted file store vs `openssl speed`,
 * and blind-index lookups in a table of 1,000,000 rows (embedded PostgreSQL in a scratch dir).
 *
 *   npm run bench:crypto              BENCH_ROWS=200000 npm run bench:crypto
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { blindIndex, normalizeForIndex } from '../src/crypto/blind-index.js';
import { FileDecryptor, FileEncryptor } from '../src/crypto/file-cipher.js';
import { decryptField, encryptField } from '../src/crypto/field-cipher.js';
import { SecretKey } from '../src/crypto/secret-key.js';
import { createLogger } from '../src/config/logger.js';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { LocalFileStore } from '../src/storage/file-store.js';
import { freePort } from '../test/support/free-port.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const key = new SecretKey(randomBytes(32));
const place = { practiceId: randomUUID(), table: 'patients', column: 'last_name', rowId: randomUUID() };
const value = Buffer.from('Montgomery-Fairweather, Alexandra J.'); // ~40 bytes, a typical field

function opsPerSecond(ms: number, work: () => void): number {
  for (let i = 0; i < 2000; i++) work(); // warm-up
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (let i = 0; i < 1000; i++) work();
    n += 1000;
  }
  return n / ((performance.now() - start) / 1000);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

console.log(`Enamel crypto bench — ${os.cpus().length} cores, Node ${process.version}\n`);

// 1. Field cipher vs raw AES-256-GCM on the same 40-byte input (encrypt + decrypt).
const field = opsPerSecond(2000, () => {
  decryptField(key, encryptField(key, 1, value, place), place);
});
const aad = Buffer.from('|enamel-field|aad-of-similar-length-0123456789');
const raw = opsPerSecond(2000, () => {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key.bytes, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(value), c.final()]);
  const tag = c.getAuthTag();
  const d = createDecipheriv('aes-256-gcm', key.bytes, iv);
  d.setAAD(aad);
  d.setAuthTag(tag);
  Buffer.concat([d.update(ct), d.final()]);
});
console.log(`field encrypt+decrypt   ${field.toFixed(0).padStart(9)} ops/s   raw node AES-256-GCM ${raw.toFixed(0)} ops/s   ratio ${(field / raw).toFixed(2)}`);

// 2. Encrypted file store (encrypt + fsync'd write, read + decrypt) vs openssl speed.
const dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-bench-files-'));
try {
  const store = new LocalFileStore(dir);
  const size = 64 * 1024 * 1024;
  const chunk = randomBytes(1024 * 1024);
  const source = (): Readable => Readable.from((function* () { for (let i = 0; i < size / chunk.length; i++) yield chunk; })());
  const binding = { practiceId: place.practiceId, fileId: randomUUID() };
  // Cipher alone (memory to memory), then the whole store (disk write + fsync, read back).
  const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });
  let t0 = performance.now();
  await pipeline(source(), new FileEncryptor(key, 1, binding), sink());
  const cipherMBs = size / 1e6 / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  const { objectName } = await store.put(source(), new FileEncryptor(key, 1, binding));
  const writeMBs = size / 1e6 / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  let read = 0;
  await pipeline(store.get(objectName), new FileDecryptor(async () => key, binding), async (s: AsyncIterable<Buffer>) => {
    for await (const c of s) read += c.length;
  });
  const readMBs = size / 1e6 / ((performance.now() - t0) / 1000);
  if (read !== size) throw new Error('file bench read back the wrong size');
  let openssl: number | undefined;
  try {
    const out = execFileSync('openssl', ['speed', '-evp', 'aes-256-gcm', '-bytes', '65536', '-seconds', '2'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = out.split('\n').find((l) => /^aes-256-gcm/i.test(l.trim()));
    const kb = line ? Number(line.trim().split(/\s+/).pop()!.replace(/k$/, '')) : NaN;
    openssl = Number.isFinite(kb) ? (kb * 1000) / 1e6 : undefined;
  } catch {
    openssl = undefined;
  }
  const ref = openssl ? `openssl speed aes-256-gcm (64 KiB) ${openssl.toFixed(0)} MB/s   ratio write ${(writeMBs / openssl).toFixed(2)}, read ${(readMBs / openssl).toFixed(2)}` : 'openssl not available';
  console.log(`file cipher 64 MiB       encrypt ${cipherMBs.toFixed(0)} MB/s in memory${openssl ? `   ratio ${(cipherMBs / openssl).toFixed(2)}` : ''}`);
  console.log(`file store 64 MiB        write ${writeMBs.toFixed(0)} MB/s (incl. fsync), read ${readMBs.toFixed(0)} MB/s   ${ref}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}

// 3. Blind-index lookup in a table of ROWS rows (normalise + HMAC + indexed SELECT, one client).
const pgDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-bench-pg-'));
const embedded = await startEmbeddedPostgres({ dataDir: pgDir, port: await freePort(), logger: createLogger('warn') });
const client = new pg.Client({ connectionString: embedded.superuserUrl() });
try {
  await client.connect();
  await client.query('CREATE TABLE bench_patients (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, practice_id uuid NOT NULL, last_name_bidx bytea)');
  const practiceId = randomUUID();
  const t0 = performance.now();
  for (let start = 0; start < ROWS; start += 50_000) {
    const batch: Buffer[] = [];
    for (let i = start; i < Math.min(ROWS, start + 50_000); i++) batch.push(blindIndex(key, 'name', `name${i}`));
    await client.query('INSERT INTO bench_patients (practice_id, last_name_bidx) SELECT $1, unnest($2::bytea[])', [practiceId, batch]);
  }
  await client.query('CREATE INDEX ON bench_patients (practice_id, last_name_bidx)');
  await client.query('ANALYZE bench_patients');
  console.log(`blind-index table        ${ROWS.toLocaleString('en-US')} rows loaded and indexed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const samples: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const n = Math.floor(Math.random() * ROWS);
    const s = performance.now();
    const bidx = blindIndex(key, 'name', normalizeForIndex('name', ` NAME${n} `)!);
    const r = await client.query({ name: 'lookup', text: 'SELECT id FROM bench_patients WHERE practice_id = $1 AND last_name_bidx = $2', values: [practiceId, bidx] });
    samples.push(performance.now() - s);
    if (r.rowCount !== 1) throw new Error(`lookup of name${n} found ${r.rowCount} rows`);
  }
  samples.sort((x, y) => x - y);
  console.log(`blind-index lookup       p50 ${percentile(samples, 50).toFixed(3)} ms, p99 ${percentile(samples, 99).toFixed(3)} ms (3,000 lookups, one client, prepared)`);
} finally {
  await client.end().catch(() => undefined);
  await embedded.stop();
  await rm(pgDir, { recursive: true, force: true });
}
