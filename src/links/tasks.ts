/** What a patient link lets the patient do (one link may carry several). */
export const LINK_TASKS = ['plan_review', 'intake_forms', 'uploads', 'access_report', 'records_download', 'amendment_request'] as const;
export type LinkTask = (typeof LINK_TASKS)[number];
