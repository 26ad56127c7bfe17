import { auditCheckpointJob } from './audit-checkpoint.job.js';
import { auditVerifyFullJob, auditVerifyJob } from './audit-verify.job.js';
import { outboxJob } from './outbox.job.js';
import { cleanupJob, retentionJob } from './retention.job.js';
import { accessReviewsJob, inactiveAccountsJob } from './access-reviews.job.js';
import { backupJob, restoreDrillJob } from './backup.job.js';
import { exportJob } from './export.job.js';
import { patientRightsJob } from './patient-rights.job.js';
import { complianceDeadlinesJob } from './compliance-deadlines.job.js';
import type { Job } from './scheduler.js';

/** The schedule: every periodic task Enamel runs. `enamel jobs run NAME` runs one now. */
export const JOBS: Job[] = [auditCheckpointJob, auditVerifyJob, auditVerifyFullJob, outboxJob, retentionJob, cleanupJob, accessReviewsJob, inactiveAccountsJob, backupJob, restoreDrillJob, exportJob, patientRightsJob, complianceDeadlinesJob];

export function findJob(name: string): Job | undefined {
  return JOBS.find((j) => j.name === name);
}
