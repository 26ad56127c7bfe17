import { allPracticeIds } from '../queries/practices.queries.js';
import { alertIncidentDeadlines } from '../services/incidents/incidents.service.js';
import { checkCoverage } from '../services/vendors/vendors.service.js';
import { jobNow, type Job } from './scheduler.js';

/**
 * Every morning: the business associate coverage check (an alert when a service that sees PHI has
 * no agreement in force — newly missing, or expired today) and the breach notices due within a week
 * or overdue (one alert per task).
 */
export const complianceDeadlinesJob: Job = {
  name: 'compliance-deadlines',
  schedule: '17 6 * * *',
  async run(ctx) {
    const practices = await allPracticeIds(ctx.db.knex);
    const coverage = await checkCoverage(ctx.db, ctx.integrations ?? [], practices, jobNow(ctx));
    let notices = 0;
    for (const practiceId of practices) notices += await alertIncidentDeadlines(ctx.db, practiceId, jobNow(ctx));
    return { gaps: coverage.gaps, coverage_alerts: coverage.alerted, notices };
  },
};
