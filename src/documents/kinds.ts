/**
 * What a patient document is, and who may see it. Clinical images and anything unclassified
 * ("other", a patient's own photo) need `documents.download`; the office's paperwork — insurance
 * cards, photo ID, signed consents — is also open to `documents.office` (front desk, billing), who
 * check coverage and identity but do not read radiographs.
 */
export const DOCUMENT_KINDS = ['radiograph', 'intraoral_photo', 'insurance_card', 'photo_id', 'consent', 'other'] as const;
export type DocumentKind = (typeof DOCUMENT_KINDS)[number];

export const OFFICE_DOCUMENT_KINDS: readonly DocumentKind[] = ['insurance_card', 'photo_id', 'consent'];

export const DOCUMENT_KIND_LABELS: Record<DocumentKind, string> = {
  radiograph: 'Radiograph (X-ray)',
  intraoral_photo: 'Intraoral photo',
  insurance_card: 'Insurance card',
  photo_id: 'Photo ID',
  consent: 'Signed consent',
  other: 'Other',
};

export function isOfficeDocument(kind: string): boolean {
  return (OFFICE_DOCUMENT_KINDS as readonly string[]).includes(kind);
}
