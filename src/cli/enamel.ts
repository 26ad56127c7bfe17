#!/usr/bin/env node
import { readFile, writeFile } from 'node:fs/promises';
import { createTransport } from '../messaging/transports.js';
import { createCheckpoint, exportCheckpoint, parseCheckpointFile, sealAll, verifyCheckpointSignature, verifyPractice } from '../audit/index.js';
import { loadConfig } from '../config/env.js';
import { createLogger } from '../config/logger.js';
import { createCrypto } from '../crypto/index.js';
import {
  PURPOSES,
  keyStatus,
  resumeAllRotations,
  rewrapAll,
  rotateDataKey,
  runRotation,
  shredPractice,
  type KeyServices,
  type RotationJob,
} from '../crypto/key-management.js';
import type { Purpose } from '../crypto/keyring.js';
import type { Knex } from 'knex';
import type { Logger } from '../config/logger.js';
import type { Keyring } from '../crypto/keyring.js';
import { createKnex } from '../db/knex.js';
import type { FileStore } from '../storage/file-store.js';
import { JOBS, findJob } from '../jobs/index.js';
import { runJob } from '../jobs/scheduler.js';
import { createDb, isUuid, type Actor, type Db } from '../db/tenant.js';
import { insertVerification } from '../queries/audit.queries.js';
import { auditChainIds } from '../queries/practices.queries.js';
import { expectedMigrations, migrateLatest, pendingMigrations } from '../db/migrations.js';
import { permissionsTable, withPermissionsTable } from '../permissions.js';
import { createOperator, rewrapOperatorSecrets } from '../services/operators/operators.service.js';
import { deactivateOperator, operatorIdByEmail, reactivateOperator } from '../services/operators/operator-accounts.service.js';
import { listOperators } from '../queries/operators.queries.js';

/**
 * The operator's command line. Today: migrations against an external database (for deployments
 * that set MIGRATE_ON_START=false). Later issues add keys, audit and jobs commands here.
 */
const USAGE = `Usage: enamel <command>

Commands:
  migrate                         apply pending migrations as the owner role (MIGRATION_DATABASE_URL)
  migrate status                  list migrations and whether each is applied
  keys status                     data-key versions, status and KEK per practice; running re-encryptions
  keys rotate --practice ID [--purpose fields|blind-index|files]
                                  new data-key version(s), then re-encrypt (resumable)
  keys resume                     finish every interrupted re-encryption
  keys rewrap                     re-wrap every data key under the active KEK (after adding a KEK)
  keys shred --practice ID --confirm ID
                                  destroy every data key of a practice (irreversible)
  audit verify [--practice ID]    recompute every hash chain (the installation's and each practice's) and check signed checkpoints; exit 1 on a break
  audit checkpoint [--practice ID] [--out DIR]
                                  seal, sign the chain heads, and write each checkpoint as a text file
  audit check-file FILE           verify an exported checkpoint file with the public key it carries
  jobs list                       the scheduled jobs and their last runs
  jobs run NAME                   run one job now (under the same lock as the schedule)
  operators create --email EMAIL --name NAME
                                  a platform operator account; prints its one-time password and TOTP secret
  operators list                  every operator account with its status and last sign-in
  operators deactivate --email EMAIL
                                  ends the operator's sessions, replaces its credentials, revokes its support grants
  operators reactivate --email EMAIL
                                  active again with a new one-time password and TOTP secret (printed once)
  permissions table [--write FILE] print the role × permission table (or replace it in FILE)
  help                            show this text

Key, audit and job commands use DATABASE_URL (runtime role) and the KEK settings (KEK_FILE or ENAMEL_KEKS).
Every key action is recorded in key_events with the actor "operator:cli-$USER".
`;

async function migrate(args: string[]): Promise<number> {
  const url = process.env.MIGRATION_DATABASE_URL;
  if (!url) {
    process.stderr.write('MIGRATION_DATABASE_URL is not set: it must name the owner role that runs migrations.\n');
    return 2;
  }
  const owner = createKnex(url, { poolMax: 1, applicationName: 'enamel-cli' });
  try {
    if (args[0] === 'status') {
      const pending = new Set(await pendingMigrations(owner));
      for (const name of await expectedMigrations()) process.stdout.write(`${pending.has(name) ? 'pending ' : 'applied '} ${name}\n`);
      return 0;
    }
    if (args.length > 0) {
      process.stderr.write(USAGE);
      return 2;
    }
    const applied = await migrateLatest(owner);
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s):\n  ${applied.join('\n  ')}\n` : 'migrations are current\n');
    return 0;
  } finally {
    await owner.destroy();
  }
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

interface Runtime {
  knex: Knex;
  db: Db;
  keyring: Keyring;
  files: FileStore;
  logger: Logger;
}

/**
 * Runs `work` against the database the app uses (DATABASE_URL, runtime role) with the configured
 * keys, closing the pool afterwards. Exit code 2 with a clear message when DATABASE_URL is unset.
 */
async function withRuntime(area: string, work: (rt: Runtime) => Promise<number>): Promise<number> {
  const config = loadConfig();
  if (config.database.kind !== 'external') {
    process.stderr.write(`DATABASE_URL is not set: ${area} commands work on the database the app uses (runtime role).\n`);
    return 2;
  }
  const logger = createLogger('warn');
  const knex = createKnex(config.database.runtimeUrl, { poolMax: 3, applicationName: 'enamel-cli' });
  try {
    const { keyring, files } = await createCrypto(config, logger);
    return await work({ knex, db: createDb(knex), keyring, files, logger });
  } finally {
    await knex.destroy();
  }
}

async function keys(args: string[]): Promise<number> {
  const [sub] = args;
  if (!sub || !['status', 'rotate', 'resume', 'rewrap', 'shred'].includes(sub)) {
    process.stderr.write(USAGE);
    return 2;
  }
  const actor: Actor = { kind: 'operator', id: `cli-${cliUser()}` };
  return withRuntime('key', async ({ db, keyring, files }) => {
    const s: KeyServices = { db, keyring, files };
    const practiceId = option(args, 'practice');
    if ((sub === 'rotate' || sub === 'shred') && !isUuid(practiceId)) {
      process.stderr.write(`keys ${sub} needs --practice <practice id> (see \`enamel keys status\`)\n`);
      return 2;
    }
    const progress = (j: RotationJob): void => {
      process.stdout.write(`  ${j.purpose} v${j.from_version}→v${j.to_version}: ${j.done}/${j.total} rows${j.status === 'done' ? ' (done)' : ''}\n`);
    };
    switch (sub) {
      case 'status': {
        const { keys: rows, jobs } = await keyStatus(s, actor);
        process.stdout.write(`KEK provider: ${keyring.provider.kind}, active KEK ${keyring.provider.activeKekId()}${keyring.provider.isEvaluation ? ' (EVALUATION)' : ''}\n`);
        for (const r of rows) {
          process.stdout.write(`${r.practiceId}  ${r.purpose.padEnd(11)} v${r.version}  ${r.status.padEnd(9)} ${r.kekId ?? '-'}\n`);
        }
        for (const j of jobs) process.stdout.write(`re-encryption ${j.status === 'failed' ? `FAILED (${j.error_code}${j.error_table ? ` in ${j.error_table}` : ''}; run \`enamel keys resume\`)` : 'running'}: ${j.practice_id} ${j.purpose} ${j.done}/${j.total}\n`);
        if (rows.length === 0) process.stdout.write('no data keys yet (they are created on first use)\n');
        return 0;
      }
      case 'rotate': {
        const purposeArg = option(args, 'purpose');
        if (purposeArg && !PURPOSES.includes(purposeArg as Purpose)) {
          process.stderr.write(`--purpose must be one of ${PURPOSES.join(', ')}\n`);
          return 2;
        }
        for (const purpose of purposeArg ? [purposeArg as Purpose] : PURPOSES) {
          const job = await rotateDataKey(s, practiceId!, purpose, actor);
          process.stdout.write(`rotated ${purpose} to v${job.to_version}; re-encrypting ${job.total} rows\n`);
          await runRotation(s, practiceId!, job.id, actor, { onProgress: progress });
        }
        return 0;
      }
      case 'resume': {
        const { resumed, failed } = await resumeAllRotations(s, actor, { onProgress: progress });
        process.stdout.write(resumed ? `finished ${resumed} re-encryption(s)\n` : failed.length ? '' : 'no interrupted re-encryption\n');
        for (const f of failed) process.stderr.write(`FAILED ${f.message}\n`);
        return failed.length ? 1 : 0;
      }
      case 'rewrap': {
        const n = await rewrapAll(s, actor);
        const ops = await rewrapOperatorSecrets(db.knex, keyring.provider);
        process.stdout.write(`re-wrapped ${n} data key(s) and ${ops} operator secret(s) under KEK ${keyring.provider.activeKekId()}\n`);
        return 0;
      }
      case 'shred': {
        if (option(args, 'confirm') !== practiceId) {
          process.stderr.write('Shredding destroys the practice\'s data for good. Repeat the practice id with --confirm to proceed.\n');
          return 2;
        }
        const n = await shredPractice(s, practiceId!, actor);
        process.stdout.write(`destroyed ${n} data key(s) of practice ${practiceId}; its encrypted data can no longer be read\n`);
        return 0;
      }
    }
    return 2;
  });
}

async function auditCommand(args: string[]): Promise<number> {
  const [sub, file] = args;
  if (sub === 'check-file') {
    if (!file) {
      process.stderr.write('audit check-file needs the path of an exported checkpoint\n');
      return 2;
    }
    const parsed = parseCheckpointFile(await readFile(file, 'utf8'));
    if (!parsed) {
      process.stderr.write(`${file} is not an Enamel audit checkpoint file\n`);
      return 1;
    }
    const ok = verifyCheckpointSignature(parsed.checkpoint, parsed.publicKey);
    process.stdout.write(ok ? `valid: practice ${parsed.checkpoint.practiceId} seq ${parsed.checkpoint.seq} head ${parsed.checkpoint.headHash.toString('hex')}\n` : 'INVALID signature\n');
    return ok ? 0 : 1;
  }
  if (sub !== 'verify' && sub !== 'checkpoint') {
    process.stderr.write(USAGE);
    return 2;
  }
  const practiceArg = option(args, 'practice');
  if (practiceArg !== undefined && !isUuid(practiceArg)) {
    process.stderr.write('--practice must be a practice id\n');
    return 2;
  }
  return withRuntime('audit', async ({ knex, db, keyring }) => {
    const practices = practiceArg ? [practiceArg] : await auditChainIds(knex);
    if (sub === 'verify') {
      await sealAll(db);
      let broken = 0;
      for (const id of practices) {
        const r = await verifyPractice(db, keyring.provider, id);
        await db.withPractice(id, { kind: 'operator', id: 'cli' }, (trx) => insertVerification(trx, r, false));
        if (r.ok) process.stdout.write(`ok      ${id}  ${r.checked} events, head seq ${r.lastSeq}, ${r.checkpoints} checkpoint(s)\n`);
        else {
          broken++;
          process.stdout.write(`BROKEN  ${id}  ${r.problem!.kind} at seq ${r.problem!.seq} (${r.checked} events verified before it)\n`);
        }
      }
      return broken ? 1 : 0;
    }
    const outDir = option(args, 'out');
    for (const id of practices) {
      const cp = await createCheckpoint(db, keyring.provider, id);
      if (!cp) {
        process.stdout.write(`${id}  nothing new to sign\n`);
        continue;
      }
      const publicKey = (await keyring.provider.checkpointPublicKey(cp.keyId))!;
      process.stdout.write(`${id}  signed seq ${cp.seq} with ${cp.keyId}\n`);
      if (outDir) {
        const path = `${outDir}/enamel-audit-${id}-${cp.seq}.txt`;
        await writeFile(path, exportCheckpoint(cp, publicKey), { flag: 'wx' });
        process.stdout.write(`  written to ${path}: keep it off this server\n`);
      }
    }
    return 0;
  });
}

async function jobsCommand(args: string[]): Promise<number> {
  const [sub, name] = args;
  if (sub !== 'list' && sub !== 'run') {
    process.stderr.write(USAGE);
    return 2;
  }
  const job = name ? findJob(name) : undefined;
  if (sub === 'run' && !job) {
    process.stderr.write(`Unknown job: ${name ?? '(none)'}. Jobs: ${JOBS.map((j) => j.name).join(', ')}\n`);
    return 2;
  }
  return withRuntime('job', async ({ knex, db, keyring, files, logger }) => {
    const config = loadConfig();
    const ctx = { db, provider: keyring.provider, keyring, transport: createTransport(config, logger), files, publicUrl: config.publicUrl, logger };
    if (sub === 'list') {
      for (const j of JOBS) {
        const last = await knex('job_runs').where({ job: j.name }).orderBy('started_at', 'desc').first<{ started_at: Date; outcome: string } | undefined>('started_at', 'outcome');
        process.stdout.write(`${j.name.padEnd(20)} ${j.schedule.padEnd(12)} ${last ? `${last.outcome} at ${last.started_at.toISOString()}` : 'never run'}\n`);
      }
      return 0;
    }
    const r = await runJob(job!, ctx, 'manual');
    process.stdout.write(r.outcome === 'ok' ? `${job!.name}: ok ${JSON.stringify(r.counts)}\n` : `${job!.name}: ${r.outcome}${r.outcome === 'failed' ? ` (${r.errorType})` : ' (running elsewhere)'}\n`);
    return r.outcome === 'failed' ? 1 : 0;
  });
}

/** The person at the terminal, as an audit actor token (lowercase letters, digits, dashes). */
function cliUser(): string {
  return (process.env.USER ?? 'unknown').toLowerCase().replace(/[^a-z0-9-]/g, '').slice(0, 30) || 'unknown';
}

async function operatorsCommand(args: string[]): Promise<number> {
  const [sub] = args;
  const email = option(args, 'email')?.trim().toLowerCase();
  const usage = 'Usage: enamel operators create --email EMAIL --name NAME | list | deactivate --email EMAIL | reactivate --email EMAIL\n';
  if (sub === 'list') {
    return withRuntime('operator', async ({ knex }) => {
      for (const o of await listOperators(knex)) process.stdout.write(`${o.status.padEnd(12)} ${o.email.padEnd(40)} ${o.display_name}  last sign-in ${o.last_login_at ? o.last_login_at.toISOString() : 'never'}\n`);
      return 0;
    });
  }
  if ((sub === 'deactivate' || sub === 'reactivate') && email) {
    return withRuntime('operator', async ({ db, keyring }) => {
      const id = await operatorIdByEmail(db, email);
      if (!id) {
        process.stderr.write(`No operator with the email ${email}.\n`);
        return 1;
      }
      const meta = { ip: '127.0.0.1', requestId: `cli-${Date.now()}`, now: new Date() };
      const by = { kind: 'operator' as const, cli: cliUser() };
      if (sub === 'deactivate') {
        const r = await deactivateOperator(db, keyring.provider, by, id, meta);
        if (!r.ok) {
          process.stderr.write(`${r.error}\n`);
          return 1;
        }
        process.stdout.write(`Operator ${email} deactivated: ${r.value.sessions} session(s) ended, password and authenticator replaced, ${r.value.grants} support grant(s) revoked.\n`);
        return 0;
      }
      const r = await reactivateOperator(db, keyring.provider, by, id, meta);
      if (!r.ok) {
        process.stderr.write(`${r.error}\n`);
        return 1;
      }
      process.stdout.write([`Operator ${email} reactivated. Hand these over in person; they are shown only now.`, `Password:     ${r.value.password}`, `TOTP secret:  ${r.value.secret}`, `TOTP URI:     ${r.value.uri}`, ''].join('\n'));
      return 0;
    });
  }
  const name = option(args, 'name')?.trim();
  if (sub !== 'create' || !email || !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email) || !name || name.length > 120) {
    process.stderr.write(usage);
    return 2;
  }
  return withRuntime('operator', async ({ knex, keyring }) => {
    const op = await createOperator(knex, keyring.provider, { email, displayName: name });
    process.stdout.write(
      [`Operator ${email} created. Hand these over in person; they are shown only now.`, `Password:     ${op.password}`, `TOTP secret:  ${op.secret}`, `TOTP URI:     ${op.uri}`, 'Sign in at /operator/sign-in.', ''].join('\n'),
    );
    return 0;
  });
}

async function permissionsCommand(args: string[]): Promise<number> {
  if (args[0] !== 'table') {
    process.stderr.write(USAGE);
    return 2;
  }
  const file = args[1] === '--write' ? args[2] : undefined;
  if (args[1] === '--write' && !file) {
    process.stderr.write('permissions table --write needs a file\n');
    return 2;
  }
  if (!file) {
    process.stdout.write(`${permissionsTable()}\n`);
    return 0;
  }
  await writeFile(file, withPermissionsTable(await readFile(file, 'utf8')));
  process.stdout.write(`${file}: permissions table updated\n`);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'migrate':
      return migrate(rest);
    case 'keys':
      return keys(rest);
    case 'audit':
      return auditCommand(rest);
    case 'jobs':
      return jobsCommand(rest);
    case 'permissions':
      return permissionsCommand(rest);
    case 'operators':
      return operatorsCommand(rest);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`Unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`enamel: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
