/**
 * HTTP benchmark: starts the real server (embedded PostgreSQL in a scratch DATA_DIR) as a child
 * process, loads two pages from this process with autocannon, prints requests/s and p50/p99
 * latency, then stops the server. Targets 127.0.0.1 only; every run is bounded in time.
 *
 *   npm run bench                          # 10 s per target, 50 connections
 *   BENCH_SECONDS=5 BENCH_CONNECTIONS=16 npm run bench
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { freePort } from '../test/support/free-port.js';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

async function waitReady(base: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('server did not become ready within 60 s');
}

const targets = [
  { name: '/healthz (no database)', path: '/healthz' },
  { name: '/p/demo (slug lookup + withPractice: 3 reads)', path: '/p/demo' },
];

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-bench-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  env: { ...process.env, NODE_ENV: 'development', PORT: String(port), DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(await freePort()), LOG_LEVEL: 'info' },
  stdio: ['ignore', 'ignore', 'inherit'],
});
try {
  await waitReady(base);
  console.log(`Enamel HTTP bench — ${os.cpus().length} cores, Node ${process.version}, ${connections} connections, ${seconds} s per target\n`);
  console.log('target'.padEnd(50), 'req/s'.padStart(9), 'p50 ms'.padStart(8), 'p99 ms'.padStart(8), 'errors'.padStart(7));
  for (const t of targets) {
    // Warm-up: JIT, pool connections, prepared plans.
    await autocannon({ url: base + t.path, connections, duration: 2 });
    const r = await autocannon({ url: base + t.path, connections, duration: seconds });
    const errors = r.errors + r.non2xx + r.timeouts;
    console.log(
      t.name.padEnd(50),
      r.requests.average.toFixed(0).padStart(9),
      String(r.latency.p50).padStart(8),
      String(r.latency.p99).padStart(8),
      String(errors).padStart(7),
    );
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  await rm(dataDir, { recursive: true, force: true });
}
