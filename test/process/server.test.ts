import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
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
