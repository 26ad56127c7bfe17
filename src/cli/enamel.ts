#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Knex } from 'knex';
import { createCheckpoint, exportCheckpoint, parseCheckpointFile, sealAll, verifyCheckpointSignature, verifyPractice } from '../audit/index.js';
import { loadConfig, type Config } from '../config/env.js';
import { createLogger, type Logger } from '../config/logger.js';
import { createCrypto } from '../crypto/index.js';
import { PURPOSES, fillMissingIndexes, keyStatus, resumeAllRotations, rewrapAll, rotateDataKey, runRotation, shredPractice, type KeyServices, type RotationJob } from '../crypto/key-management.js';
import type { Keyring, Purpose } from '../crypto/keyring.js';
import { embeddedForCli } from '../db/bootstrap.js';
import { createKnex } from '../db/knex.js';
import { expectedMigrations, migrateLatest, pendingMigrations } from '../db/migrations.js';
import { createDb, isUuid, type Actor, type Db } from '../db/tenant.js';
import { JOBS, findJob } from '../jobs/index.js';
import { runJob } from '../jobs/scheduler.js';
import { configuredIntegrations } from '../compliance/coverage.js';
import { createTransport } from '../messaging/transports.js';
import { permissionsTable, withPermissionsTable } from '../permissions.js';
import { insertVerification } from '../queries/audit.queries.js';
import { jobRuns } from '../queries/jobs.queries.js';
import { listOperators } from '../queries/operators.queries.js';
import { auditChainIds } from '../queries/practices.queries.js';
import { deactivateOperator, operatorIdByEmail, reactivateOperator } from '../services/operators/operator-accounts.service.js';
import { createOperator, rewrapOperatorSecrets } from '../services/operators/operators.service.js';
import type { FileStore } from '../storage/file-store.js';
import { BackupInvalidError, createBackup, listBackups, pruneBackups, verifyBackup } from '../backup/backup.js';
import { runRestoreDrill } from '../backup/drill.js';
import { raiseInstallationAlert } from '../services/alerts/alerts.service.js';
import { recordBackupEvent } from '../backup/events.js';
import { RestoreCheckError, RestoreRefusedError, restoreBackup } from '../backup/restore.js';
import { backupSettings, type BackupSettings } from '../backup/settings.js';

/**
 * The operator's command line: migrations, keys, the audit log, jobs, operator accounts, the
 * permissions table. Every command parses its flags with util.parseArgs (`--flag value` and
 * `--flag=value`; an unknown flag is refused with the command's usage; `--help` prints it).
 *
 * Which database: DATABASE_URL (and MIGRATION_DATABASE_URL for `migrate`) when set; otherwise the
 * embedded evaluation database under DATA_DIR — the one `npm start` is running, or started for the
 * command and stopped again.
 */

type OptionSpec = { type: 'string' | 'boolean'; value?: string; help: string; required?: boolean };

interface Command {
  /** e.g. "keys rotate" */
  name: string;
  summary: string;
  options?: Record<string, OptionSpec>;
  positionals?: { name: string; required: boolean }[];
  run(c: { values: Record<string, string | boolean | undefined>; positionals: string[] }): Promise<number>;
}

class UsageError extends Error {}
/** The command cannot run as set up (no database to work on): the message says what to do. Exit 2. */
class SetupError extends Error {}

const out = (text: string): void => void process.stdout.write(text);
const err = (text: string): void => void process.stderr.write(text);

/** The person at the terminal, as an audit actor token (lowercase letters, digits, dashes). */
function cliUser(): string {
  return (process.env.USER ?? 'unknown').toLowerCase().replace(/[^a-z0-9-]/g, '').slice(0, 30) || 'unknown';
}

const cliActor = (): Actor => ({ kind: 'operator', id: `cli-${cliUser()}` });

interface Runtime {
  knex: Knex;
  db: Db;
  keyring: Keyring;
  files: FileStore;
  logger: Logger;
  config: Config;
  /** The database's connection strings (backups, restores). */
  urls: { runtimeUrl: string; ownerUrl: string | undefined };
  backup: BackupSettings;
}

/** The database URLs to use: the configured ones, or the embedded evaluation database's (and how to let it go). */
async function connection(config: Config, logger: Logger): Promise<{ runtimeUrl: string; ownerUrl: string | undefined; superuserUrl?: string; close: () => Promise<void> }> {
  if (config.database.kind === 'external') return { runtimeUrl: config.database.runtimeUrl, ownerUrl: config.database.migrationUrl, close: async () => undefined };
  const embedded = await embeddedForCli(config, logger).catch((e: unknown) => {
    throw new SetupError(e instanceof Error ? e.message : String(e));
  });
  if (embedded.started) err(`(started the embedded database under ${config.dataDir} for this command; it stops again when the command ends)\n`);
  return { runtimeUrl: embedded.runtimeUrl, ownerUrl: embedded.ownerUrl, superuserUrl: embedded.superuserUrl, close: embedded.close };
}

/** Runs `work` against the database the app uses (runtime role) with the configured keys, closing everything afterwards. */
async function withRuntime(work: (rt: Runtime) => Promise<number>): Promise<number> {
  const config = loadConfig();
  const logger = createLogger('warn');
  const conn = await connection(config, logger);
  const knex = createKnex(conn.runtimeUrl, { poolMax: 3, applicationName: 'enamel-cli' });
  try {
    const { keyring, files } = await createCrypto(config, logger);
    const urls = { runtimeUrl: conn.runtimeUrl, ownerUrl: conn.ownerUrl };
    return await work({ knex, db: createDb(knex), keyring, files, logger, config, urls, backup: backupSettings(config, { ...urls, superuserUrl: conn.superuserUrl }) });
  } finally {
    await knex.destroy();
    await conn.close();
  }
}

const practiceOption = (help: string, required = false): OptionSpec => ({ type: 'string', value: 'ID', help, required });

function practiceId(values: Record<string, unknown>, required: boolean): string | undefined {
  const id = values.practice;
  if (id === undefined && !required) return undefined;
  if (!isUuid(id)) throw new UsageError('--practice needs a practice id (see `enamel keys status`)');
  return id;
}

const progress = (j: RotationJob): void => out(`  ${j.purpose} v${j.from_version}→v${j.to_version}: ${j.done}/${j.total} rows${j.status === 'done' ? ' (done)' : ''}\n`);

const COMMANDS: Command[] = [
  {
    name: 'migrate',
    summary: 'apply pending migrations as the owner role (MIGRATION_DATABASE_URL, or the embedded database)',
    async run() {
      return withOwner(async (owner) => {
        const applied = await migrateLatest(owner);
        out(applied.length ? `applied ${applied.length} migration(s):\n  ${applied.join('\n  ')}\n` : 'migrations are current\n');
        return 0;
      });
    },
  },
  {
    name: 'migrate status',
    summary: 'list migrations and whether each is applied',
    async run() {
      return withOwner(async (owner) => {
        const pending = new Set(await pendingMigrations(owner));
        for (const name of await expectedMigrations()) out(`${pending.has(name) ? 'pending ' : 'applied '} ${name}\n`);
        return 0;
      });
    },
  },
  {
    name: 'keys status',
    summary: 'data-key versions, status and KEK per practice; running and failed re-encryptions',
    async run() {
      return withRuntime(async ({ db, keyring, files }) => {
        const { keys: rows, jobs } = await keyStatus({ db, keyring, files }, cliActor());
        out(`KEK provider: ${keyring.provider.kind}, active KEK ${keyring.provider.activeKekId()}${keyring.provider.isEvaluation ? ' (EVALUATION)' : ''}\n`);
        for (const r of rows) out(`${r.practiceId}  ${r.purpose.padEnd(11)} v${r.version}  ${r.status.padEnd(9)} ${r.kekId ?? '-'}\n`);
        for (const j of jobs) out(`re-encryption ${j.status === 'failed' ? `FAILED (${j.error_code}${j.error_table ? ` in ${j.error_table}` : ''}; run \`enamel keys resume\`)` : 'running'}: ${j.practice_id} ${j.purpose} ${j.done}/${j.total}\n`);
        if (rows.length === 0) out('no data keys yet (they are created on first use)\n');
        return 0;
      });
    },
  },
  {
    name: 'keys rotate',
    summary: 'new data-key version(s), then re-encrypt everything under it (resumable)',
    options: { practice: practiceOption('the practice (required)', true), purpose: { type: 'string', value: PURPOSES.join('|'), help: 'one purpose only (default: all three)' } },
    async run({ values }) {
      const id = practiceId(values, true)!;
      const purpose = values.purpose as string | undefined;
      if (purpose !== undefined && !PURPOSES.includes(purpose as Purpose)) throw new UsageError(`--purpose must be one of ${PURPOSES.join(', ')}`);
      return withRuntime(async ({ db, keyring, files }) => {
        const s: KeyServices = { db, keyring, files };
        for (const p of purpose ? [purpose as Purpose] : PURPOSES) {
          const job = await rotateDataKey(s, id, p, cliActor());
          out(`rotated ${p} to v${job.to_version}; re-encrypting ${job.total} rows\n`);
          await runRotation(s, id, job.id, cliActor(), { onProgress: progress });
        }
        return 0;
      });
    },
  },
  {
    name: 'keys resume',
    summary: 'finish every interrupted or failed re-encryption and fill in missing search indexes (exit 1 naming each that still fails)',
    async run() {
      return withRuntime(async ({ db, keyring, files }) => {
        const { resumed, failed } = await resumeAllRotations({ db, keyring, files }, cliActor(), { onProgress: progress });
        out(resumed ? `finished ${resumed} re-encryption(s)\n` : failed.length ? '' : 'no interrupted re-encryption\n');
        const filled = await fillMissingIndexes({ db, keyring, files }, cliActor());
        if (filled > 0) out(`filled in the search indexes of ${filled} row(s)\n`);
        for (const f of failed) err(`FAILED ${f.message}\n`);
        return failed.length ? 1 : 0;
      });
    },
  },
  {
    name: 'keys rewrap',
    summary: 're-wrap every data key and operator secret under the active KEK (after adding a KEK)',
    async run() {
      return withRuntime(async ({ db, keyring, files }) => {
        const n = await rewrapAll({ db, keyring, files }, cliActor());
        const ops = await rewrapOperatorSecrets(db.knex, keyring.provider);
        out(`re-wrapped ${n} data key(s) and ${ops} operator secret(s) under KEK ${keyring.provider.activeKekId()}\n`);
        return 0;
      });
    },
  },
  {
    name: 'keys shred',
    summary: 'destroy every data key of a practice: its data, and every backup of it, becomes unreadable',
    options: { practice: practiceOption('the practice (required)', true), confirm: practiceOption('the same id again, to confirm', true) },
    async run({ values }) {
      const id = practiceId(values, true)!;
      if (values.confirm !== id) {
        err("Shredding destroys the practice's data for good. Repeat the practice id with --confirm to proceed.\n");
        return 2;
      }
      return withRuntime(async ({ db, keyring, files }) => {
        const n = await shredPractice({ db, keyring, files }, id, cliActor());
        out(`destroyed ${n} data key(s) of practice ${id}; its encrypted data can no longer be read\n`);
        return 0;
      });
    },
  },
  {
    name: 'audit verify',
    summary: "seal, then recompute every hash chain (the installation's and each practice's) and check signed checkpoints; exit 1 on a break",
    options: { practice: practiceOption('one chain only') },
    async run({ values }) {
      const only = practiceId(values, false);
      return withRuntime(async ({ knex, db, keyring }) => {
        await sealAll(db);
        let broken = 0;
        for (const id of only ? [only] : await auditChainIds(knex)) {
          const r = await verifyPractice(db, keyring.provider, id);
          await db.withPractice(id, { kind: 'operator', id: 'cli' }, (trx) => insertVerification(trx, r, false));
          if (r.ok) out(`ok      ${id}  ${r.checked} events, head seq ${r.lastSeq}, ${r.checkpoints} checkpoint(s)\n`);
          else {
            broken++;
            out(`BROKEN  ${id}  ${r.problem!.kind} at seq ${r.problem!.seq} (${r.checked} events verified before it)\n`);
          }
        }
        return broken ? 1 : 0;
      });
    },
  },
  {
    name: 'audit checkpoint',
    summary: 'seal, sign each chain head, and (with --out) write each checkpoint as a text file to keep off the server',
    options: { practice: practiceOption('one chain only'), out: { type: 'string', value: 'DIR', help: 'write checkpoint files here' } },
    async run({ values }) {
      const only = practiceId(values, false);
      const outDir = values.out as string | undefined;
      return withRuntime(async ({ knex, db, keyring }) => {
        for (const id of only ? [only] : await auditChainIds(knex)) {
          const cp = await createCheckpoint(db, keyring.provider, id);
          if (!cp) {
            out(`${id}  nothing new to sign\n`);
            continue;
          }
          const publicKey = (await keyring.provider.checkpointPublicKey(cp.keyId))!;
          out(`${id}  signed seq ${cp.seq} with ${cp.keyId}\n`);
          if (outDir) {
            const file = `${outDir}/enamel-audit-${id}-${cp.seq}.txt`;
            await writeFile(file, exportCheckpoint(cp, publicKey), { flag: 'wx' });
            out(`  written to ${file}: keep it off this server\n`);
          }
        }
        return 0;
      });
    },
  },
  {
    name: 'audit check-file',
    summary: 'verify an exported checkpoint file with the public key it carries (no database needed)',
    positionals: [{ name: 'FILE', required: true }],
    async run({ positionals }) {
      const file = positionals[0]!;
      const parsed = parseCheckpointFile(await readFile(file, 'utf8'));
      if (!parsed) {
        err(`${file} is not an Enamel audit checkpoint file\n`);
        return 1;
      }
      const ok = verifyCheckpointSignature(parsed.checkpoint, parsed.publicKey);
      out(ok ? `valid: practice ${parsed.checkpoint.practiceId} seq ${parsed.checkpoint.seq} head ${parsed.checkpoint.headHash.toString('hex')}\n` : 'INVALID signature\n');
      return ok ? 0 : 1;
    },
  },
  {
    name: 'backup create',
    summary: 'take a backup of the database and the file store now (into BACKUP_DIR); then apply retention',
    async run() {
      return withRuntime(async ({ db, keyring, files, backup }) => {
        if (!backup.sourceUrl) throw new SetupError('BACKUP_DATABASE_URL is not set: backups need a role that row-level security does not filter (docs/BACKUP.md)');
        const made = await createBackup({ url: backup.sourceUrl, files }, backup.dir, { provider: keyring.provider, progress: (line) => out(`${line}\n`), ...(backup.method ? { method: backup.method } : {}) });
        const rows = made.manifest.tables.reduce((n, t) => n + t.rows, 0);
        await recordBackupEvent(db, cliActor() as { kind: 'operator'; id: string }, { action: 'backup_create', outcome: 'allowed', backupId: made.manifest.id, details: { count: rows, files: made.manifest.files.count, bytes: made.bytes, seconds: Math.ceil(made.seconds) } });
        out(`backup ${made.manifest.id} (${made.manifest.method}): ${made.file}\n  ${made.manifest.tables.length} tables, ${rows.toLocaleString('en-US')} rows, ${made.manifest.files.count.toLocaleString('en-US')} files, ${(made.bytes / 1e6).toFixed(1)} MB in ${made.seconds.toFixed(1)} s\n`);
        if (made.manifest.files.missing.length) err(`warning: ${made.manifest.files.missing.length} stored file(s) were deleted while the backup ran and are not in it\n`);
        const removed = await pruneBackups(backup.dir, { keep: backup.keep, maxAgeDays: backup.maxAgeDays }, new Date());
        if (removed.length) out(`  retention removed ${removed.length} older backup(s)\n`);
        return 0;
      });
    },
  },
  {
    name: 'backup list',
    summary: 'the backups in BACKUP_DIR, newest first',
    async run() {
      const config = loadConfig();
      const all = await listBackups(config.backup.dir);
      if (!all.length) out(`no backups in ${config.backup.dir}\n`);
      for (const b of all) out(`${b.createdAt.toISOString()}  ${(b.bytes / 1e6).toFixed(1).padStart(9)} MB  ${b.file}\n`);
      return 0;
    },
  },
  {
    name: 'backup verify',
    summary: 'check a backup without restoring it: the manifest signature, every part\'s SHA-256 and every chunk\'s tag (audited)',
    positionals: [{ name: 'FILE', required: true }],
    async run({ positionals }) {
      return withRuntime(async ({ db, keyring }) => {
        const outcome = await verifyBackup(positionals[0]!, keyring.provider, (line) => out(`${line}\n`));
        const backupId = outcome.manifest?.id;
        await recordBackupEvent(db, cliActor() as { kind: 'operator'; id: string }, { action: 'backup_verify', outcome: outcome.ok ? 'allowed' : 'failed', ...(backupId ? { backupId } : {}), ...(outcome.ok ? { details: { bytes: outcome.bytes } } : {}) });
        if (!outcome.ok) {
          err(`INVALID: ${outcome.problem.part}: ${outcome.problem.reason}\n`);
          return 1;
        }
        out(`valid: backup ${outcome.manifest.id} of ${outcome.manifest.createdAt}, ${outcome.parts} parts, ${(outcome.bytes / 1e6).toFixed(1)} MB, schema ${outcome.manifest.schema.at(-1)}\n`);
        return 0;
      });
    },
  },
  {
    name: 'backup restore',
    summary: 'restore a backup into the configured database, which must be empty (a new database), and its file store; then check it',
    positionals: [{ name: 'FILE', required: true }],
    async run({ positionals }) {
      return withRuntime(async ({ db, keyring, files, urls }) => {
        if (!urls.ownerUrl) throw new SetupError('MIGRATION_DATABASE_URL is not set: a restore runs as the owner role');
        try {
          const report = await restoreBackup(positionals[0]!, { ownerUrl: urls.ownerUrl, runtimeUrl: urls.runtimeUrl, files }, { provider: keyring.provider, progress: (line) => out(`${line}\n`) });
          await recordBackupEvent(db, cliActor() as { kind: 'operator'; id: string }, { action: 'backup_restore', outcome: 'allowed', backupId: report.manifest.id, details: { count: report.rows, files: report.files, seconds: Math.ceil(report.seconds) } });
          out(`restored backup ${report.manifest.id} of ${report.manifest.createdAt} in ${report.seconds.toFixed(1)} s: ${report.tables} tables, ${report.rows.toLocaleString('en-US')} rows, ${report.files.toLocaleString('en-US')} files\n`);
          out(`  audit chains verified: ${report.chains.length} (${report.chains.reduce((n, c) => n + c.events, 0).toLocaleString('en-US')} events)\n  encrypted values decrypted from a sample of every table: ${report.decrypted.toLocaleString('en-US')}\n`);
          for (const p of report.shredded) out(`  practice ${p}: its key material was destroyed (shredded); its data stays unreadable\n`);
          return 0;
        } catch (e) {
          if (e instanceof RestoreRefusedError || e instanceof BackupInvalidError || e instanceof RestoreCheckError) {
            err(`restore failed: ${e.message}\n`);
            return 1;
          }
          throw e;
        }
      });
    },
  },
  {
    name: 'backup drill',
    summary: 'the restore drill now: restore the newest backup into a scratch database, check it, record RPO and RTO',
    async run() {
      return withRuntime(async ({ db, keyring, backup }) => {
        const r = await runRestoreDrill(backup, { db, provider: keyring.provider, progress: (line) => out(`${line}\n`) });
        if (r.outcome === 'failed') {
          await raiseInstallationAlert(db, { kind: 'restore_drill_failed', severity: 'critical', details: { job: 'restore-drill' } });
          err(`restore drill FAILED: ${r.failure}\n`);
          return 1;
        }
        out(`restore drill passed: backup ${r.backupId} (${r.backupCreatedAt?.toISOString()}), RPO ${r.rpoSeconds} s, RTO ${r.rtoSeconds} s, ${r.report!.rows.toLocaleString('en-US')} rows, ${r.report!.files} files, ${r.report!.chains.length} chains verified\n`);
        return 0;
      });
    },
  },
  {
    name: 'jobs list',
    summary: 'the scheduled jobs and their last runs',
    async run() {
      return withRuntime(async ({ knex }) => {
        const runs = await jobRuns(knex, 500);
        for (const j of JOBS) {
          const last = runs.find((r) => r.job === j.name);
          out(`${j.name.padEnd(20)} ${j.schedule.padEnd(12)} ${last ? `${last.outcome} at ${last.started_at.toISOString()}` : 'never run'}\n`);
        }
        return 0;
      });
    },
  },
  {
    name: 'jobs run',
    summary: 'run one job now (under the same lock as the schedule)',
    positionals: [{ name: 'NAME', required: true }],
    async run({ positionals }) {
      const job = findJob(positionals[0]!);
      if (!job) throw new UsageError(`Unknown job: ${positionals[0]}. Jobs: ${JOBS.map((j) => j.name).join(', ')}`);
      return withRuntime(async ({ db, keyring, files, logger, config, backup }) => {
        const ctx = { db, provider: keyring.provider, keyring, transport: createTransport(config, logger), files, publicUrl: config.publicUrl, logger, backup, integrations: configuredIntegrations(config) };
        const r = await runJob(job, ctx, 'manual');
        out(r.outcome === 'ok' ? `${job.name}: ok ${JSON.stringify(r.counts)}\n` : `${job.name}: ${r.outcome}${r.outcome === 'failed' ? ` (${r.errorType})` : ' (running elsewhere)'}\n`);
        return r.outcome === 'failed' ? 1 : 0;
      });
    },
  },
  {
    name: 'operators create',
    summary: 'a platform operator account; prints its one-time password and TOTP secret',
    options: { email: { type: 'string', value: 'EMAIL', help: 'sign-in email (required)', required: true }, name: { type: 'string', value: 'NAME', help: 'display name (required)', required: true } },
    async run({ values }) {
      const email = typeof values.email === 'string' ? values.email.trim().toLowerCase() : '';
      const name = typeof values.name === 'string' ? values.name.trim() : '';
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw new UsageError('--email needs an email address');
      if (!name || name.length > 120) throw new UsageError('--name needs a name (at most 120 characters)');
      return withRuntime(async ({ knex, keyring }) => {
        const op = await createOperator(knex, keyring.provider, { email, displayName: name });
        out([`Operator ${email} created. Hand these over in person; they are shown only now.`, `Password:     ${op.password}`, `TOTP secret:  ${op.secret}`, `TOTP URI:     ${op.uri}`, 'Sign in at /operator/sign-in.', ''].join('\n'));
        return 0;
      });
    },
  },
  {
    name: 'operators list',
    summary: 'every operator account with its status and last sign-in',
    async run() {
      return withRuntime(async ({ knex }) => {
        for (const o of await listOperators(knex)) out(`${o.status.padEnd(12)} ${o.email.padEnd(40)} ${o.display_name}  last sign-in ${o.last_login_at ? o.last_login_at.toISOString() : 'never'}\n`);
        return 0;
      });
    },
  },
  {
    name: 'operators deactivate',
    summary: "end the operator's sessions, replace its credentials with unknown ones, revoke its support grants",
    options: { email: { type: 'string', value: 'EMAIL', help: 'the operator (required)', required: true } },
    async run({ values }) {
      return operatorChange(values.email, async (db, keyring, id, email) => {
        const r = await deactivateOperator(db, keyring.provider, { kind: 'operator', cli: cliUser() }, id, cliMeta());
        if (!r.ok) return failWith(r.error);
        out(`Operator ${email} deactivated: ${r.value.sessions} session(s) ended, password and authenticator replaced, ${r.value.grants} support grant(s) revoked.\n`);
        return 0;
      });
    },
  },
  {
    name: 'operators reactivate',
    summary: 'active again with a new one-time password and TOTP secret (printed once)',
    options: { email: { type: 'string', value: 'EMAIL', help: 'the operator (required)', required: true } },
    async run({ values }) {
      return operatorChange(values.email, async (db, keyring, id, email) => {
        const r = await reactivateOperator(db, keyring.provider, { kind: 'operator', cli: cliUser() }, id, cliMeta());
        if (!r.ok) return failWith(r.error);
        out([`Operator ${email} reactivated. Hand these over in person; they are shown only now.`, `Password:     ${r.value.password}`, `TOTP secret:  ${r.value.secret}`, `TOTP URI:     ${r.value.uri}`, ''].join('\n'));
        return 0;
      });
    },
  },
  {
    name: 'permissions table',
    summary: 'print the role × permission table (or replace it in FILE)',
    options: { write: { type: 'string', value: 'FILE', help: 'replace the table between its markers in this file' } },
    async run({ values }) {
      const file = values.write as string | undefined;
      if (!file) {
        out(`${permissionsTable()}\n`);
        return 0;
      }
      await writeFile(file, withPermissionsTable(await readFile(file, 'utf8')));
      out(`${file}: permissions table updated\n`);
      return 0;
    },
  },
];

const cliMeta = () => ({ ip: '127.0.0.1', requestId: `cli-${Date.now()}`, now: new Date() });

function failWith(message: string): number {
  err(`${message}\n`);
  return 1;
}

async function operatorChange(email: unknown, work: (db: Db, keyring: Keyring, id: string, email: string) => Promise<number>): Promise<number> {
  const address = typeof email === 'string' ? email.trim().toLowerCase() : '';
  if (!address) throw new UsageError('--email needs the operator\u2019s email address');
  return withRuntime(async ({ db, keyring }) => {
    const id = await operatorIdByEmail(db, address);
    return id ? work(db, keyring, id, address) : failWith(`No operator with the email ${address}.`);
  });
}

/** `migrate` runs as the owner role: MIGRATION_DATABASE_URL, or the embedded database's owner. */
async function withOwner(work: (owner: Knex) => Promise<number>): Promise<number> {
  const config = loadConfig();
  const logger = createLogger('warn');
  if (config.database.kind === 'external' && !config.database.migrationUrl) {
    err('MIGRATION_DATABASE_URL is not set: it must name the owner role that runs migrations.\n');
    return 2;
  }
  // CASE: the owner's URL alone (a release job migrating before any app runs) is an external database too.
  const ownerOnly = config.database.kind === 'embedded' ? process.env.MIGRATION_DATABASE_URL?.trim() : undefined;
  const conn = ownerOnly ? { ownerUrl: ownerOnly, close: async () => undefined } : await connection(config, logger);
  const owner = createKnex(conn.ownerUrl!, { poolMax: 1, applicationName: 'enamel-cli' });
  try {
    return await work(owner);
  } finally {
    await owner.destroy();
    await conn.close();
  }
}

function usageOf(c: Command): string {
  const opts = Object.entries(c.options ?? {});
  const flag = ([k, o]: [string, OptionSpec]) => (o.type === 'string' ? `--${k} ${o.value ?? 'VALUE'}` : `--${k}`);
  const args = [...opts.map(([k, o]) => (o.required ? flag([k, o]) : `[${flag([k, o])}]`)), ...(c.positionals ?? []).map((p) => (p.required ? p.name : `[${p.name}]`))];
  const lines = [`Usage: enamel ${c.name}${args.length ? ` ${args.join(' ')}` : ''}`, '', `  ${c.summary}`];
  const left = (k: string, o?: OptionSpec) => `  --${k}${o && o.type === 'string' ? `=${o.value ?? 'VALUE'}` : ''}`;
  const width = Math.max(12, ...opts.map(([k, o]) => left(k, o).length)) + 3;
  if (opts.length) lines.push('', 'Options:', ...opts.map(([k, o]) => left(k, o).padEnd(width) + o.help));
  lines.push(left('help').padEnd(width) + 'show this text');
  return `${lines.join('\n')}\n`;
}

function usage(): string {
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(24)} ${c.summary}`);
  return [
    'Usage: enamel <command> [options]     (enamel <command> --help for its options)',
    '',
    'Commands:',
    ...rows,
    '  help                     show this text',
    '',
    'Every command but `audit check-file` and `permissions table` works on a database: DATABASE_URL',
    '(runtime role; MIGRATION_DATABASE_URL for migrate) when set, else the embedded evaluation database',
    'under DATA_DIR (the running `npm start`, or started for the command and stopped again). Keys come',
    'from KEK_FILE / ENAMEL_KEKS, or the evaluation key under DATA_DIR. Key and operator actions are',
    'recorded with the actor "operator:cli-$USER".',
    '',
  ].join('\n');
}

/** Finds the command named by the first one or two words, parses its flags, runs it. Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === 'help' || argv[0] === '--help' || argv[0] === '-h') {
    (argv.length === 0 ? err : out)(usage());
    return argv.length === 0 ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === argv.slice(0, 2).join(' ')) ?? COMMANDS.find((c) => c.name === argv[0] && !c.name.includes(' '));
  if (!command) {
    const area = COMMANDS.filter((c) => c.name.startsWith(`${argv[0]} `));
    err(area.length ? `Unknown ${argv[0]} command: ${argv[1] ?? '(none)'}. One of: ${area.map((c) => c.name).join(', ')}\n` : `Unknown command: ${argv[0]}\n\n${usage()}`);
    return 2;
  }
  const rest = argv.slice(command.name.split(' ').length);
  const options = { ...Object.fromEntries(Object.entries(command.options ?? {}).map(([k, o]) => [k, { type: o.type }])), help: { type: 'boolean' as const, short: 'h' } };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true });
  } catch (e) {
    err(`${e instanceof Error ? e.message : String(e)}\n\n${usageOf(command)}`);
    return 2;
  }
  if (parsed.values.help) {
    out(usageOf(command));
    return 0;
  }
  const expected = command.positionals ?? [];
  if (parsed.positionals.length > expected.length || parsed.positionals.length < expected.filter((p) => p.required).length) {
    err(`${command.name}: ${parsed.positionals.length > expected.length ? `unexpected argument ${parsed.positionals[expected.length]}` : `missing ${expected[parsed.positionals.length]!.name}`}\n\n${usageOf(command)}`);
    return 2;
  }
  try {
    return await command.run({ values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals });
  } catch (e) {
    if (e instanceof UsageError) {
      err(`${e.message}\n\n${usageOf(command)}`);
      return 2;
    }
    if (e instanceof SetupError) {
      err(`${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

/** Runs the command line and exits with its code (the `enamel` launcher calls this too). */
export function runCli(argv: string[]): void {
  // CASE: `enamel jobs list | head`: the reader went away; that is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' ? process.exit(0) : undefined));
  main(argv).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`enamel: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}

// Run when this file is the program (node or tsx), not when it is imported.
if (process.argv[1] && pathToFileURL(realpathSync(process.argv[1])).href === import.meta.url) runCli(process.argv.slice(2));
