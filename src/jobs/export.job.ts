import { allPracticeIds } from '../queries/practices.queries.js';
import { expireExports, runOpenExports } from '../services/exports/exports.service.js';
import { jobNow, type Job } from './scheduler.js';

/**
 * Every minute: builds the practices' exports a batch at a time for up to 50 seconds (a restart
 * resumes from each export's cursor), then removes archives ready for more than a week.
 */
export const exportJob: Job = {
  name: 'export',
  schedule: '*/1 * * * *',
  async run(ctx) {
    const d = { db: ctx.db, keyring: ctx.keyring, files: ctx.files };
    const r = await runOpenExports(d, () => jobNow(ctx), 50_000);
    let expired = 0;
    for (const practiceId of await allPracticeIds(ctx.db.knex)) expired += await expireExports(d, practiceId, jobNow(ctx));
    return { ...r, expired };
  },
};
