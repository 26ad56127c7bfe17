import type { ConfiguredIntegration } from '../compliance/coverage.js';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from '../config/logger.js';
import type { KeyProvider } from '../crypto/key-provider.js';
import type { Keyring } from '../crypto/keyring.js';
import type { Transport } from '../messaging/transports.js';
import type { BackupSettings } from '../backup/settings.js';
import type { Db } from '../db/tenant.js';
import type { FileStore } from '../storage/file-store.js';
import { raiseInstallationAlert } from '../services/alerts/alerts.service.js';
import { finishJobRun, startJobRun, tryJobLock } from '../queries/jobs.queries.js';

/** What every job gets. */
export interface JobContext {
  db: Db;
  provider: KeyProvider;
  /** Data keys (jobs that read or write encrypted fields, e.g. the outbox). */
  keyring: Keyring;
  /** Where the outbox sends email. */
  transport: Transport;
  /** Encrypted file blobs (retention removes a purged record's files). */
  files: FileStore;
  /** The public address, for links in notices (the owners' email about disabled accounts). */
  publicUrl?: URL;
  logger: Logger;
  /** The time jobs act on (a test passes its own clock); Date.now when absent. */
  clock?: () => number;
  /** Where backups come from and go (the backup and restore-drill jobs). */
  backup?: BackupSettings;
  /** The configured integrations (the business associate coverage check). */
  integrations?: readonly ConfiguredIntegration[];
}

/** A job: a plain function, idempotent, testable without cron. Returns counts (never PHI). */
export interface Job {
  name: string;
  /** Cron expression (node-cron, 5 or 6 fields); overridable by JOB_SCHEDULE_<NAME>. */
  schedule: string;
  run(ctx: JobContext): Promise<Record<string, number>>;
}

/** The time a job acts on: its context's clock (tests), else now. */
export const jobNow = (ctx: Pick<JobContext, 'clock'>): Date => new Date(ctx.clock?.() ?? Date.now());

export type RunResult = { outcome: 'ok'; counts: Record<string, number> } | { outcome: 'failed'; errorType: string } | { outcome: 'skipped' };

/**
 * Runs a job once under a PostgreSQL advisory lock (transaction-scoped, held for the run): two
 * replicas never run the same job at the same time; the one that finds it locked skips. Each run
 * that happens is recorded in job_runs with its outcome and counts.
 */
export async function runJob(job: Job, ctx: JobContext, trigger: 'schedule' | 'manual' = 'manual'): Promise<RunResult> {
  return ctx.db.knex.transaction(async (lockTrx) => {
    if (!(await tryJobLock(lockTrx, job.name))) return { outcome: 'skipped' } as const;
    const run = await startJobRun(ctx.db.knex, job.name, trigger);
    try {
      const counts = await job.run(ctx);
      await finishJobRun(ctx.db.knex, run, { outcome: 'ok', counts });
      return { outcome: 'ok', counts } as const;
    } catch (err) {
      const errorType = err instanceof Error ? err.name.replace(/[^A-Za-z0-9_]/g, '') || 'Error' : 'Error';
      ctx.logger.error({ err, job: job.name }, 'job failed');
      await finishJobRun(ctx.db.knex, run, { outcome: 'failed', errorType });
      // SECURITY: a failing job is an installation alert (once while it stays open): the console shows it.
      await raiseInstallationAlert(ctx.db, { kind: 'job_failed', severity: 'warning', details: { job: job.name } }).catch((e: unknown) => ctx.logger.error({ err: e, job: job.name }, 'could not raise the job-failure alert'));
      return { outcome: 'failed', errorType } as const;
    }
  });
}

/** Schedules every job in this process. Returns a stop function that waits for runs in flight. */
export function startScheduler(jobs: Job[], ctx: JobContext, env: NodeJS.ProcessEnv = process.env): () => Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  const tasks: ScheduledTask[] = jobs.map((job) => {
    const expression = env[`JOB_SCHEDULE_${job.name.toUpperCase().replace(/-/g, '_')}`] ?? job.schedule;
    if (!cron.validate(expression)) throw new Error(`JOB_SCHEDULE for ${job.name}: "${expression}" is not a cron expression`);
    return cron.schedule(
      expression,
      () => {
        const p = runJob(job, ctx, 'schedule').catch((err: unknown) => ctx.logger.error({ err, job: job.name }, 'job could not start'));
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      },
      { name: job.name, noOverlap: true },
    );
  });
  return async () => {
    await Promise.all(tasks.map((t) => t.stop()));
    await Promise.all(inFlight);
  };
}
