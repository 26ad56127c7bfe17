import { disableInactiveAccounts, runAccessReviews } from '../services/compliance/access-reviews.service.js';
import { jobNow, type Job } from './scheduler.js';

/** Daily: this quarter's access review for every practice, and an alert for each overdue one. */
export const accessReviewsJob: Job = {
  name: 'access-reviews',
  schedule: '0 6 * * *',
  run: (ctx) => runAccessReviews(ctx.db, jobNow(ctx)),
};

/** Daily: accounts unused for the practice's period (default 90 days) are disabled; owners are told. */
export const inactiveAccountsJob: Job = {
  name: 'inactive-accounts',
  schedule: '10 6 * * *',
  run: (ctx) => disableInactiveAccounts(ctx, jobNow(ctx)),
};
