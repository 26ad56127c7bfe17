import { disableInactiveAccounts, runAccessReviews } from '../services/compliance/access-reviews.service.js';
import { runInstallationReview } from '../services/operators/operator-reviews.service.js';
import { jobNow, type Job } from './scheduler.js';

/** Daily: this quarter's access review for every practice and for the installation's operators, and an alert for each overdue one. */
export const accessReviewsJob: Job = {
  name: 'access-reviews',
  schedule: '0 6 * * *',
  async run(ctx) {
    const now = jobNow(ctx);
    const practices = await runAccessReviews(ctx.db, now);
    const installation = await runInstallationReview(ctx.db, now);
    return { created: practices.created, overdue: practices.overdue, operator_reviews_created: installation.created, operator_reviews_overdue: installation.overdue };
  },
};

/** Daily: accounts unused for the practice's period (default 90 days) are disabled; the security contact is told (alert) and the owners get an email. */
export const inactiveAccountsJob: Job = {
  name: 'inactive-accounts',
  schedule: '10 6 * * *',
  run: (ctx) => disableInactiveAccounts(ctx, jobNow(ctx)),
};
