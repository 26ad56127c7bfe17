import { allPracticeIds } from '../queries/practices.queries.js';
import { alertOverdueRequests } from '../services/rights/rights.service.js';
import { jobNow, type Job } from './scheduler.js';

/** Every morning: one alert per practice for patients' requests that passed their legal due date unanswered. */
export const patientRightsJob: Job = {
  name: 'patient-rights',
  schedule: '7 6 * * *',
  async run(ctx) {
    let overdue = 0;
    for (const practiceId of await allPracticeIds(ctx.db.knex)) overdue += await alertOverdueRequests(ctx.db, practiceId, jobNow(ctx));
    return { overdue };
  },
};
