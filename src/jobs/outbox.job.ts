import { deliverDue } from '../messaging/outbox.js';
import type { Job } from './scheduler.js';

/** Every minute: sends due outbox messages (retries with backoff; gives up after 8 attempts). */
export const outboxJob: Job = {
  name: 'outbox',
  schedule: '* * * * *',
  run: (ctx) => deliverDue(ctx),
};
