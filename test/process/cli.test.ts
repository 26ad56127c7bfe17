import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { useTestDatabase } from '../support/db.js';

const run = promisify(execFile);

async function enamel(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/enamel.ts', ...args], {
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('enamel CLI: migrate', () => {
  const t = useTestDatabase({ migrated: false });

  it('refuses to run without MIGRATION_DATABASE_URL', async () => {
    const r = await enamel(['migrate'], {});
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('MIGRATION_DATABASE_URL is not set');
  });

  it('shows pending migrations, applies them, then reports them applied', async () => {
    const env = { MIGRATION_DATABASE_URL: t.current.ownerUrl };
    const before = await enamel(['migrate', 'status'], env);
    expect(before.code).to.equal(0);
    expect(before.stdout).to.match(/^pending\s+\d{14}_tenancy$/m);

    const applied = await enamel(['migrate'], env);
    expect(applied.code, applied.stderr).to.equal(0);
    expect(applied.stdout).to.match(/applied \d+ migration/);

    const after = await enamel(['migrate', 'status'], env);
    expect(after.stdout).to.match(/^applied\s+\d{14}_tenancy$/m);
    expect(after.stdout).to.not.include('pending');
  });

  it('rejects an unknown command with usage and exit code 2', async () => {
    const r = await enamel(['frobnicate'], {});
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('Unknown command: frobnicate');
  });
});
