import type { PlainValues } from '../crypto/encrypted-columns.js';
import { authorize, type StaffActor } from '../policies/index.js';
import type { PatientRecord } from '../policies/patient.policy.js';
import type { PatientRow, patientSecrets } from '../queries/patients.queries.js';

/**
 * Minimum necessary: the view models a role gets. A list shows name, date of birth, location and
 * status only; the chart adds contact details for anyone who may read patients, and insurance only
 * for billing and registration roles. Views never see knex rows or fields a role may not see.
 */
export type PatientPlain = PlainValues<typeof patientSecrets.columns>;

export interface PatientSummaryView {
  id: string;
  name: string;
  dateOfBirth: string;
  /** Whole years on `now` ('' without a date of birth). */
  age: string;
  /** The phone with all but its last four digits hidden ('' without one): enough to tell two Smiths apart. */
  maskedPhone: string;
  location: string;
  status: string;
}

/** Whole years between an ISO date of birth and `now` (UTC calendar). */
export function ageOn(dateOfBirth: string, now: Date): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(dateOfBirth);
  if (!m) return '';
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const before = now.getUTCMonth() + 1 < mo || (now.getUTCMonth() + 1 === mo && now.getUTCDate() < d);
  const years = now.getUTCFullYear() - y - (before ? 1 : 0);
  return years >= 0 ? String(years) : '';
}

export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  return digits.length >= 4 ? `•••-•••-${digits.slice(-4)}` : '';
}

interface Address {
  line1?: string | null;
  line2?: string | null;
  city?: string | null;
  region?: string | null;
  postalCode?: string | null;
}
interface Insurance {
  carrier?: string | null;
  memberId?: string | null;
}
interface Emergency {
  name?: string | null;
  phone?: string | null;
  relationship?: string | null;
}

/** An amendment as shown beside the part of the record it concerns. */
export interface AmendmentShown {
  decision: string;
  requestedAt: Date;
  decidedAt: Date | null;
  requestedChange: string;
  response: string | null;
  disagreement: string | null;
  disagreementAt: Date | null;
}

export interface PatientChartView extends PatientSummaryView {
  /** Agreed restrictions and confidential-communication rules that hold (the chart's banner). */
  restrictions?: { kind: string; channel: string | null }[];
  /** Decided amendments of the demographics the patient asked for (accepted: appended; denied: reason and any statement of disagreement). */
  amendments?: AmendmentShown[];
  givenName: string;
  familyName: string;
  sex: string;
  phone: string;
  email: string;
  preferredContact: string;
  address: string[];
  emergency: string;
  /** Only for roles that may see insurance. */
  insurance?: { carrier: string; memberId: string };
  breakGlassUntil?: Date;
  /** Deletion requested: the date the retention job purges the record (unless held). */
  purgeAfter: Date | null;
  legalHold: boolean;
  can: { edit: boolean; accessHistory: boolean; retention: boolean };
}

/** The edit form's values (for roles that may edit). */
export interface PatientFormValues {
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  sex: string;
  phone: string;
  email: string;
  preferredContact: string;
  addressLine1: string;
  addressLine2: string;
  city: string;
  region: string;
  postalCode: string;
  insuranceCarrier: string;
  insuranceMemberId: string;
  emergencyName: string;
  emergencyPhone: string;
  emergencyRelationship: string;
  locationId: string;
  status: string;
  smsConsent: string;
}

const s = (v: unknown): string => (typeof v === 'string' ? v : '');

/** A patient's name as every staff page lists it: "Family, Given". */
export function patientName(plain: { family_name?: unknown; given_name?: unknown }): string {
  return `${s(plain.family_name)}, ${s(plain.given_name)}`;
}

export function presentSummary(row: Pick<PatientRow, 'id' | 'location_id' | 'status'>, plain: PatientPlain, locations: Map<string, string>, now: Date = new Date()): PatientSummaryView {
  return {
    id: row.id,
    name: patientName(plain),
    dateOfBirth: s(plain.date_of_birth),
    age: ageOn(s(plain.date_of_birth), now),
    maskedPhone: maskPhone(s(plain.phone)),
    location: locations.get(row.location_id) ?? '',
    status: row.status,
  };
}

export function presentChart(actor: StaffActor, row: PatientRow, plain: PatientPlain, locations: Map<string, string>, record: PatientRecord, now: Date): PatientChartView {
  const address = (plain.address ?? {}) as Address;
  const emergency = (plain.emergency_contact ?? {}) as Emergency;
  const insurance = (plain.insurance ?? {}) as Insurance;
  return {
    ...presentSummary(row, plain, locations, now),
    givenName: s(plain.given_name),
    familyName: s(plain.family_name),
    sex: s(plain.sex),
    phone: s(plain.phone),
    email: s(plain.email),
    preferredContact: s(plain.preferred_contact),
    address: [s(address.line1), s(address.line2), [s(address.city), s(address.region), s(address.postalCode)].filter(Boolean).join(' ')].filter(Boolean),
    emergency: [s(emergency.name), s(emergency.relationship) && `(${s(emergency.relationship)})`, s(emergency.phone)].filter(Boolean).join(' '),
    ...(authorize(actor, 'patient.seeInsurance') ? { insurance: { carrier: s(insurance.carrier), memberId: s(insurance.memberId) } } : {}),
    ...(record.breakGlassUntil && record.breakGlassUntil > now ? { breakGlassUntil: record.breakGlassUntil } : {}),
    purgeAfter: row.purge_after,
    legalHold: row.legal_hold_at !== null,
    can: { edit: authorize(actor, 'patient.update', record, now), accessHistory: authorize(actor, 'patient.accessHistory', record), retention: authorize(actor, 'compliance.manageRetention', record) },
  };
}

export function presentForm(row: Pick<PatientRow, 'location_id' | 'status' | 'sms_consent_source'>, plain: PatientPlain, withInsurance: boolean): PatientFormValues {
  const address = (plain.address ?? {}) as Address;
  const emergency = (plain.emergency_contact ?? {}) as Emergency;
  const insurance = (plain.insurance ?? {}) as Insurance;
  return {
    givenName: s(plain.given_name),
    familyName: s(plain.family_name),
    dateOfBirth: s(plain.date_of_birth),
    sex: s(plain.sex),
    phone: s(plain.phone),
    email: s(plain.email),
    preferredContact: s(plain.preferred_contact),
    addressLine1: s(address.line1),
    addressLine2: s(address.line2),
    city: s(address.city),
    region: s(address.region),
    postalCode: s(address.postalCode),
    insuranceCarrier: withInsurance ? s(insurance.carrier) : '',
    insuranceMemberId: withInsurance ? s(insurance.memberId) : '',
    emergencyName: s(emergency.name),
    emergencyPhone: s(emergency.phone),
    emergencyRelationship: s(emergency.relationship),
    locationId: row.location_id,
    status: row.status,
    smsConsent: row.sms_consent_source ?? 'none',
  };
}
