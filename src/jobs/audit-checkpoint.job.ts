import { createCheckpoint } from '../audit/checkpoints.js';
import { auditChainIds } from '../queries/practices.queries.js';
import type { Job } from './scheduler.js';

/** Hourly: seal and sign every chain head — the installation’s and every practice’s — skipping those with nothing new. */
export const auditCheckpointJob: Job = {
  name: 'audit-checkpoint',
  schedule: '7 * * * *',
  async run({ db, provider }) {
    let signed = 0;
    const practices = await auditChainIds(db.knex);
    for (const id of practices) if (await createCheckpoint(db, provider, id)) signed++;
    return { chains: practices.length, signed };
  },
};
