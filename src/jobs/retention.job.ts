import { cleanupExpiredRecords, purgeDuePatients, purgeTerminatedPractices } from '../services/retention/retention.service.js';
import type { Job } from './scheduler.js';

const now = (ctx: { clock?: () => number }) => new Date(ctx.clock?.() ?? Date.now());

/** Nightly: patients past their deletion grace (not held), then terminated practices past their tail. */
export const retentionJob: Job = {
  name: 'retention',
  schedule: '30 2 * * *',
  run: async (ctx) => ({ ...(await purgeDuePatients(ctx, now(ctx))), ...(await purgeTerminatedPractices(ctx, now(ctx))) }),
};

/** Hourly: expired sessions, reset tokens, invitations, old patient links, stale sign-in counters. */
export const cleanupJob: Job = {
  name: 'cleanup',
  schedule: '15 * * * *',
  run: (ctx) => cleanupExpiredRecords(ctx, now(ctx)),
};
