import { createCheckpoint } from '../audit/checkpoints.js';
import { allPracticeIds } from '../queries/practices.queries.js';
import type { Job } from './scheduler.js';

/** Hourly: seal and sign every practice's chain head (skips practices with nothing new). */
export const auditCheckpointJob: Job = {
  name: 'audit-checkpoint',
  schedule: '7 * * * *',
  async run({ db, provider }) {
    let signed = 0;
    const practices = await allPracticeIds(db.knex);
    for (const id of practices) if (await createCheckpoint(db, provider, id)) signed++;
    return { practices: practices.length, signed };
  },
};
