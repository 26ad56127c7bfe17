/** The audit log: one call to write (`audit.record`), a sealer, a verifier, signed checkpoints. */
export { audit, record, AuditEventError } from './record.js';
export type { AuditEventInput } from './record.js';
export { sealAll, sealPractice, startSealer } from './sealer.js';
export { verifyPractice, type VerifyResult } from './verify.js';
export { createCheckpoint, exportCheckpoint, parseCheckpointFile, verifyCheckpointSignature } from './checkpoints.js';
