import { cleanupExpiredRecords, purgeDuePatients, purgeExpiredAuditTrails, purgeTerminatedPractices } from '../services/retention/retention.service.js';
import { jobNow, type Job } from './scheduler.js';

/** Nightly: patients past their deletion grace (not held), terminated practices past their tail, and purged practices' audit trails past their retention. */
export const retentionJob: Job = {
  name: 'retention',
  schedule: '30 2 * * *',
  run: async (ctx) => ({ ...(await purgeDuePatients(ctx, jobNow(ctx))), ...(await purgeTerminatedPractices(ctx, jobNow(ctx))), ...(await purgeExpiredAuditTrails(ctx, jobNow(ctx))) }),
};

/** Hourly: expired sessions, reset tokens, invitations, old patient links, stale sign-in counters. */
export const cleanupJob: Job = {
  name: 'cleanup',
  schedule: '15 * * * *',
  run: (ctx) => cleanupExpiredRecords(ctx, jobNow(ctx)),
};
