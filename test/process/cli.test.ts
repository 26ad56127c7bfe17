import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { createTestDatabase, destroyTestDatabase, useTestDatabase, type TestDatabase } from '../support/db.js';

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

  it('refuses to run without MIGRATION_DATABASE_URL beside a DATABASE_URL, or without any database', async () => {
    const r = await enamel(['migrate'], { DATABASE_URL: t.current.runtimeUrl });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include('MIGRATION_DATABASE_URL is not set');
    const none = await enamel(['migrate'], { DATA_DIR: path.join(os.tmpdir(), `enamel-nothing-${process.pid}`) });
    expect(none.code).to.equal(2);
    expect(none.stderr).to.include('run `npm start` once');
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
    const sub = await enamel(['keys', 'spin'], {});
    expect(sub.code).to.equal(2);
    expect(sub.stderr).to.include('Unknown keys command: spin').and.include('keys rotate');
  });

  it('parses flags with util.parseArgs: unknown flags refused with the usage, --help generated from the options', async () => {
    const unknown = await enamel(['keys', 'rotate', '--practise', 'x'], {});
    expect(unknown.code).to.equal(2);
    expect(unknown.stderr).to.include("Unknown option '--practise'").and.include('Usage: enamel keys rotate --practice ID [--purpose fields|blind-index|files]');
    const help = await enamel(['keys', 'rotate', '--help'], {});
    expect(help.code).to.equal(0);
    expect(help.stdout).to.include('--practice=ID').and.include('--purpose=fields|blind-index|files');
    const extra = await enamel(['jobs', 'run'], {});
    expect(extra.code).to.equal(2);
    expect(extra.stderr).to.include('missing NAME');
  });
});

describe('enamel CLI: keys', () => {
  const t = useTestDatabase();
  const kek1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
  const kek2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;
  let practiceId: string;
  let keysDir: string;

  before(async () => {
    const { buildPractice } = await import('../support/factories.js');
    practiceId = (await buildPractice(t.current.owner, { slug: 'cli-keys' })).id;
    keysDir = await mkdtemp(path.join(os.tmpdir(), 'enamel-cli-keys-'));
  });
  after(() => rm(keysDir, { recursive: true, force: true }));

  it('needs DATABASE_URL and a practice id, and refuses a shred without confirmation', async () => {
    expect((await enamel(['keys', 'status'], { ENAMEL_KEKS: kek1, DATA_DIR: path.join(os.tmpdir(), `enamel-nothing-${process.pid}`) })).stderr).to.include('no evaluation database under');
    const env = { DATABASE_URL: t.current.runtimeUrl, ENAMEL_KEKS: kek1, KEYS_DIR: keysDir };
    const noId = await enamel(['keys', 'rotate'], env);
    expect(noId.code).to.equal(2);
    expect(noId.stderr).to.include('--practice');
    const unconfirmed = await enamel(['keys', 'shred', '--practice', practiceId], env);
    expect(unconfirmed.code).to.equal(2);
    expect(unconfirmed.stderr).to.include('--confirm');
  });

  it('rotates, re-wraps under a new KEK and reports status, recording each action', async () => {
    const env = { DATABASE_URL: t.current.runtimeUrl, ENAMEL_KEKS: kek1, USER: 'opsperson', KEYS_DIR: keysDir };
    const rotated = await enamel(['keys', 'rotate', `--practice=${practiceId}`, '--purpose=fields'], env);
    expect(rotated.code, rotated.stderr).to.equal(0);
    expect(rotated.stdout).to.include('rotated fields to v2');

    const created = await enamel(['operators', 'create', '--email', 'Ops@Platform.example', '--name', 'Ops Person'], env);
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.match(/TOTP secret:\s+[A-Z2-7]{16,}/);
    expect((await enamel(['operators', 'create', '--email', 'not-an-email', '--name', 'X'], env)).code).to.equal(2);

    const rewrapped = await enamel(['keys', 'rewrap'], { ...env, ENAMEL_KEKS: `${kek2},${kek1}` });
    expect(rewrapped.code, rewrapped.stderr).to.equal(0);
    expect(rewrapped.stdout).to.match(/re-wrapped [1-9]\d* data key\(s\) and 1 operator secret\(s\) under KEK k2/);
    expect(await t.current.owner('operators').where({ email: 'ops@platform.example' }).first('totp_kek_id')).to.deep.equal({ totp_kek_id: 'k2' });

    const status = await enamel(['keys', 'status'], { ...env, ENAMEL_KEKS: kek2 });
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.match(new RegExp(`${practiceId}\\s+fields\\s+v1\\s+destroyed`));
    expect(status.stdout).to.match(new RegExp(`${practiceId}\\s+fields\\s+v2\\s+active\\s+k2`));
    expect(status.stdout).to.not.include(Buffer.alloc(32, 2).toString('base64'));

    const actors = await t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, (trx) => trx('key_events').distinct().pluck('actor'));
    expect(actors).to.include('operator:cli-opsperson');
  });

  it('lists, deactivates and reactivates an operator (new one-time credentials), each step in the installation chain', async () => {
    const env = { DATABASE_URL: t.current.runtimeUrl, ENAMEL_KEKS: kek1, USER: 'opsperson', KEYS_DIR: keysDir };
    expect((await enamel(['operators', 'create', '--email', 'second@platform.example', '--name', 'Second Op'], env)).code).to.equal(0);
    const off = await enamel(['operators', 'deactivate', '--email', 'second@platform.example'], env);
    expect(off.code, off.stderr).to.equal(0);
    expect(off.stdout).to.include('deactivated').and.include('session(s) ended');
    const again = await enamel(['operators', 'deactivate', '--email', 'second@platform.example'], env);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('already deactivated');
    expect((await enamel(['operators', 'deactivate', '--email', 'nobody@platform.example'], env)).stderr).to.include('No operator with the email');
    expect((await enamel(['operators', 'list'], env)).stdout).to.match(/^deactivated\s+second@platform\.example/m);
    const on = await enamel(['operators', 'reactivate', '--email', 'second@platform.example'], env);
    expect(on.code, on.stderr).to.equal(0);
    expect(on.stdout).to.match(/Password:\s+\S{20,}/).and.match(/TOTP secret:\s+[A-Z2-7]{16,}/);
    expect((await enamel(['operators', 'list'], env)).stdout).to.match(/^active\s+second@platform\.example/m);
    const { INSTALLATION_ID } = await import('../../src/db/tenant.js');
    const trail = await t.current.owner('audit_events').where({ practice_id: INSTALLATION_ID, actor_id: 'cli-opsperson' }).pluck('action');
    expect(trail).to.include.members(['user_deactivate', 'session_revoke', 'mfa_destroy', 'user_reactivate']);
    const verified = await enamel(['audit', 'verify'], env);
    expect(verified.code, verified.stdout).to.equal(0);
    expect(verified.stdout).to.match(new RegExp(`^ok\\s+${INSTALLATION_ID}\\s+\\d+ events`, 'm'));
  });
});

describe('enamel CLI: audit', () => {
  const t = useTestDatabase();
  const kek = `k1:${Buffer.alloc(32, 3).toString('base64')}`;
  let practiceId: string;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    const { buildPractice } = await import('../support/factories.js');
    const { audit } = await import('../../src/audit/index.js');
    practiceId = (await buildPractice(t.current.owner, { slug: 'cli-audit' })).id;
    await t.current.db.withPractice(practiceId, { kind: 'system', id: 'test' }, async (trx) => {
      for (let i = 0; i < 5; i++) await audit.record(trx, { practiceId, actor: { kind: 'system', id: 'test' }, action: 'view', outcome: 'allowed', details: { count: i } });
    });
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-cli-audit-'));
    env = { DATABASE_URL: t.current.runtimeUrl, ENAMEL_KEKS: kek, KEYS_DIR: path.join(dir, 'keys') };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('verifies, signs a checkpoint file, and checks the file with its public key alone', async () => {
    const verified = await enamel(['audit', 'verify', '--practice', practiceId], env);
    expect(verified.code, verified.stderr).to.equal(0);
    expect(verified.stdout).to.match(new RegExp(`ok\\s+${practiceId}\\s+5 events, head seq 5`));

    const signed = await enamel(['audit', 'checkpoint', '--practice', practiceId, '--out', dir], env);
    expect(signed.code, signed.stderr).to.equal(0);
    const file = path.join(dir, `enamel-audit-${practiceId}-5.txt`);
    const checked = await enamel(['audit', 'check-file', file], {});
    expect(checked.code, checked.stderr).to.equal(0);
    expect(checked.stdout).to.include(`valid: practice ${practiceId} seq 5`);

    const { readFile, writeFile } = await import('node:fs/promises');
    await writeFile(file, (await readFile(file, 'utf8')).replace('seq:5', 'seq:4'));
    const forged = await enamel(['audit', 'check-file', file], {});
    expect(forged.code).to.equal(1);
    expect(forged.stdout).to.include('INVALID');
  });

  it('exits 1 naming the sequence number when the chain is broken', async () => {
    const { tamperAsSuperuser } = await import('../support/superuser.js');
    await tamperAsSuperuser(t.current.name, 'DELETE FROM audit_events WHERE practice_id = ? AND seq = 2', [practiceId]);
    const r = await enamel(['audit', 'verify'], env);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(new RegExp(`BROKEN\\s+${practiceId}\\s+missing at seq 2`));
  });
});

describe('enamel CLI: backup', function () {
  this.timeout(120_000);
  const t = useTestDatabase();
  const kek = `k1:${Buffer.alloc(32, 3).toString('base64')}`;
  let work: string;
  let target: TestDatabase;

  before(async () => {
    const { buildPractice, buildPatient } = await import('../support/factories.js');
    const { buildCryptoFixture } = await import('../support/crypto.js');
    work = await mkdtemp(path.join(os.tmpdir(), 'enamel-cli-backup-'));
    const fx = await buildCryptoFixture(t.current, { k1: kek.slice(3) });
    const p = await buildPractice(t.current.owner, { slug: 'cli-backup' });
    // The patient's keys are wrapped with the provider the CLI will use: the same KEK and KEYS_DIR.
    const { LocalKeyProvider } = await import('../../src/crypto/key-provider.js');
    const { Keyring } = await import('../../src/crypto/keyring.js');
    await buildPatient(t.current.db, new Keyring(new LocalKeyProvider({ k1: kek.slice(3) }, 'k1', { practiceKeysDir: path.join(work, 'keys') })), p);
    await fx.cleanup();
    target = await createTestDatabase({ migrated: false });
  });
  after(async () => {
    await destroyTestDatabase(target);
    await rm(work, { recursive: true, force: true });
  });

  const env = (over: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    return {
      DATABASE_URL: t.current.runtimeUrl,
      MIGRATION_DATABASE_URL: t.current.ownerUrl,
      ENAMEL_KEKS: kek,
      KEYS_DIR: path.join(work, 'keys'),
      FILES_DIR: path.join(work, 'files'),
      BACKUP_DIR: path.join(work, 'backups'),
      USER: 'opsperson',
      ...over,
    };
  };

  it('create, list, verify (and a damaged copy named), restore into an empty database (twice: refused), drill', async () => {
    const { testCluster } = await import('../support/cluster.js');
    const { onDatabase } = await import('../../src/db/provision.js');
    const su = testCluster().superuserUrl;
    const unconfigured = await enamel(['backup', 'create'], env());
    expect(unconfigured.code).to.equal(2);
    expect(unconfigured.stderr).to.include('BACKUP_DATABASE_URL is not set');

    const created = await enamel(['backup', 'create'], env({ BACKUP_DATABASE_URL: onDatabase(su, t.current.name) }));
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.match(/db\/patients: 1 rows|pg_dump: \d+ rows/).and.match(/backup [0-9a-f-]{36} \((snapshot|pg_dump)\): .*\.enbak/);
    const file = /: (\/\S+\.enbak)/.exec(created.stdout)![1]!;
    expect((await enamel(['backup', 'list'], env())).stdout).to.include(file);

    const valid = await enamel(['backup', 'verify', file], env());
    expect(valid.code, valid.stderr).to.equal(0);
    expect(valid.stdout).to.match(/^valid: backup /);
    const { readFile, writeFile } = await import('node:fs/promises');
    const bytes = await readFile(file);
    bytes[bytes.length - 2000]! ^= 0xff;
    const damaged = path.join(work, 'damaged.enbak');
    await writeFile(damaged, bytes);
    const bad = await enamel(['backup', 'verify', damaged], env());
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.match(/^INVALID: /);

    const into = env({ DATABASE_URL: target.runtimeUrl, MIGRATION_DATABASE_URL: target.ownerUrl, FILES_DIR: path.join(work, 'restored-files') });
    const restored = await enamel(['backup', 'restore', file], into);
    expect(restored.code, restored.stderr).to.equal(0);
    expect(restored.stdout).to.match(/restored backup [0-9a-f-]{36} .* in [\d.]+ s: \d+ tables/).and.include('encrypted values decrypted');
    const again = await enamel(['backup', 'restore', file], into);
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('not empty');
    const audited = await target.owner.raw<{ rows: { n: number }[] }>(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'backup_restore' AND actor_id = 'cli-opsperson'`);
    expect(audited.rows[0]!.n).to.equal(1);
    const verifications = await t.current.owner.raw<{ rows: { outcome: string }[] }>(`SELECT outcome FROM audit_events WHERE action = 'backup_verify' AND actor_id = 'cli-opsperson' ORDER BY id`);
    expect(verifications.rows.map((r) => r.outcome), 'both verifications audited').to.deep.equal(['allowed', 'failed']);

    const drill = await enamel(['backup', 'drill'], env({ RESTORE_DRILL_SERVER_URL: su }));
    expect(drill.code, drill.stderr).to.equal(0);
    expect(drill.stdout).to.match(/restore drill passed: .* RPO \d+ s, RTO \d+ s/);
  });
});
