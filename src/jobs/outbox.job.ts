import { deliverDue } from '../messaging/outbox.js';
import { notifyAllAlerts, watchOutboxHealth } from '../services/alerts/alerts.service.js';
import { jobNow, type Job } from './scheduler.js';

/**
 * Every minute: queues an email to each practice's security contact for every new alert (so an
 * alert reaches a person within a minute), sends due outbox messages (retries with backoff; gives
 * up after 8 attempts), then raises an installation alert for a practice whose messages have been
 * failing for over an hour.
 */
export const outboxJob: Job = {
  name: 'outbox',
  schedule: '* * * * *',
  async run(ctx) {
    const now = jobNow(ctx);
    const alertEmails = ctx.publicUrl ? await notifyAllAlerts({ db: ctx.db, keyring: ctx.keyring, publicUrl: ctx.publicUrl }, now) : 0;
    const counts = await deliverDue(ctx, now);
    const failingPractices = await watchOutboxHealth(ctx.db, now);
    return { alert_emails: alertEmails, ...counts, failing_practices: failingPractices };
  },
};
