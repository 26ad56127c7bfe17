import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { useTestDatabase } from '../support/db.js';

/** Runs `src/server.ts` as a real process (as `npm start` does), capturing its output. */
function startServer(env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return { child, exited, output: () => ({ stdout, stderr }) };
}

async function waitForListening(output: () => { stdout: string }, exited: Promise<unknown>): Promise<number> {
  const deadline = Date.now() + 30_000;
  let died = false;
  void exited.then(() => (died = true));
  while (Date.now() < deadline && !died) {
    const m = /"port":(\d+),"host"[^\n]*Enamel is listening/.exec(output().stdout);
    if (m) return Number(m[1]);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`server did not start: ${JSON.stringify(output())}`);
}

describe('server process', () => {
  const t = useTestDatabase({ migrated: false });

  it('refuses to start in production on unsafe settings, with one clear message', async () => {
    const s = startServer({ NODE_ENV: 'production', PUBLIC_URL: 'http://x.example' });
    const [code] = await s.exited;
    expect(code).to.equal(1);
    const { stderr } = s.output();
    expect(stderr).to.include('Refusing to start with NODE_ENV=production');
    expect(stderr).to.include('DATABASE_URL:');
    expect(stderr).to.include('PUBLIC_URL:');
    expect(stderr).to.not.match(/\n\s+at /); // a message, not a stack trace
  });

  it('migrates as the owner role, serves /readyz as the runtime role, and shuts down cleanly on SIGTERM', async () => {
    const s = startServer({
      NODE_ENV: 'development',
      PORT: '0',
      DATABASE_URL: t.current.runtimeUrl,
      MIGRATION_DATABASE_URL: t.current.ownerUrl,
      LOG_LEVEL: 'info',
      ENAMEL_KEKS: `k1:${randomBytes(32).toString('base64')}`,
    });
    const port = await waitForListening(s.output, s.exited);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).to.equal(200);
    expect(s.output().stdout).to.include('migrations applied');
    expect(s.output().stdout).to.not.include('Unsafe DATABASE_URL role');
    s.child.kill('SIGTERM');
    const [code] = await s.exited;
    expect(code).to.equal(0);
    expect(s.output().stdout).to.include('shut down cleanly');
  });
});

describe('the operator CLI on the embedded default (no DATABASE_URL)', function () {
  this.timeout(180_000);
  let dir: string;
  let blocker: net.Server;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-embedded-cli-'));
    await chmod(dir, 0o755); // as root, the postgres user must pass through it
    // Another program holds the embedded database's default port.
    blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.once('error', () => resolve()).listen(54329, '127.0.0.1', () => resolve()));
  });
  after(async () => {
    await new Promise<void>((resolve) => blocker.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  const cli = async (args: string[]) => {
    try {
      const r = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/enamel.ts', ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: path.join(dir, 'data') } });
      return { code: 0, ...r };
    } catch (e) {
      return e as { code: number; stdout: string; stderr: string };
    }
  };

  it('says to run npm start first when there is no database; then uses the running server’s, or starts and stops one itself; a taken default port is replaced by a free one', async () => {
    const none = await cli(['audit', 'verify']);
    expect(none.code).to.equal(2);
    expect(none.stderr).to.include('run `npm start` once');

    const s = startServer({ NODE_ENV: 'development', PORT: '0', DATA_DIR: path.join(dir, 'data'), LOG_LEVEL: 'info', SEED_DEMO: 'false' });
    await waitForListening(s.output, s.exited);
    expect(s.output().stdout).to.match(/port 54329 is taken by another program; the embedded PostgreSQL uses port \d+ this time/);
    const attached = await cli(['audit', 'verify']);
    expect(attached.code, attached.stderr).to.equal(0);
    expect(attached.stdout).to.match(/^ok\s+00000000-0000-0000-0000-000000000000/m);
    expect(attached.stderr).to.not.include('started the embedded database');
    expect((await cli(['keys', 'status'])).stdout).to.include('KEK provider: local');
    s.child.kill('SIGTERM');
    expect((await s.exited)[0]).to.equal(0);

    const own = await cli(['jobs', 'list']);
    expect(own.code, own.stderr).to.equal(0);
    expect(own.stderr).to.include('started the embedded database');
    expect(own.stdout).to.include('audit-verify');
    const left = await promisify(execFile)('pgrep', ['-f', `postgres -D ${path.join(dir, 'data')}`]).then(() => 'running', () => 'none');
    expect(left, 'the CLI stopped the server it started').to.equal('none');
  });
});

