/**
 * FHIR R4 resources from a practice's records (docs/EXPORT.md): pure functions from decrypted rows
 * to JSON resources, one NDJSON file per resource type. Ids are the records' own UUIDs, so a
 * resource's references (Patient/<id>, Composition/<id>, CarePlan/<id>) resolve inside the export.
 * Staff are named by display name only (no Practitioner resources).
 */

import type { ItemContent } from '../queries/plans.queries.js';

export type Resource = { resourceType: string; id: string } & Record<string, unknown>;

/** Resource types in the order the archive and its index list them. */
export const RESOURCE_TYPES = ['Patient', 'Coverage', 'Composition', 'CarePlan', 'Consent', 'QuestionnaireResponse', 'DocumentReference', 'Task', 'AuditEvent'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

const SYSTEM = 'urn:enamel';
const ref = (type: string, id: string) => ({ reference: `${type}/${id}` });
const instant = (d: unknown): string => new Date(d as string | Date).toISOString();
const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** Narrative XHTML of plain text (FHIR requires an XHTML div). */
const narrative = (text: string) => ({ status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${escapeXml(text).replace(/\r?\n/g, '<br/>')}</div>` });
const dropEmpty = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0) && v !== '')) as T;

export interface PatientValues {
  given_name: string | null;
  family_name: string | null;
  date_of_birth: string | null;
  sex: string | null;
  phone: string | null;
  email: string | null;
  address: { line1?: string; line2?: string; city?: string; region?: string; postalCode?: string } | null;
  preferred_contact: string | null;
  insurance: { carrier?: string; memberId?: string; groupNumber?: string } | null;
  emergency_contact: { name?: string; phone?: string; relationship?: string } | null;
}

const GENDER: Record<string, string> = { female: 'female', male: 'male', other: 'other', unknown: 'unknown' };

export function patientResource(row: { id: string; status: string; merged_into_id?: unknown }, v: PatientValues): Resource {
  const a = v.address;
  const e = v.emergency_contact;
  return dropEmpty({
    resourceType: 'Patient',
    id: row.id,
    identifier: [{ system: `${SYSTEM}:patient`, value: row.id }],
    active: row.status === 'active',
    name: v.family_name || v.given_name ? [dropEmpty({ use: 'official', family: v.family_name ?? undefined, given: v.given_name ? [v.given_name] : undefined })] : undefined,
    telecom: [
      ...(v.phone ? [{ system: 'phone', value: v.phone, ...(v.preferred_contact === 'phone' ? { rank: 1 } : {}) }] : []),
      ...(v.email ? [{ system: 'email', value: v.email, ...(v.preferred_contact === 'email' ? { rank: 1 } : {}) }] : []),
    ],
    gender: v.sex ? (GENDER[v.sex] ?? 'unknown') : undefined,
    birthDate: v.date_of_birth ?? undefined,
    deceasedBoolean: row.status === 'deceased' ? true : undefined,
    address: a ? [dropEmpty({ line: [a.line1, a.line2].filter((x): x is string => Boolean(x)), city: a.city, state: a.region, postalCode: a.postalCode })] : undefined,
    contact: e?.name || e?.phone ? [dropEmpty({ relationship: e.relationship ? [{ text: e.relationship }] : undefined, name: e.name ? { text: e.name } : undefined, telecom: e.phone ? [{ system: 'phone', value: e.phone }] : undefined })] : undefined,
    link: row.status === 'merged' && typeof row.merged_into_id === 'string' ? [{ other: ref('Patient', row.merged_into_id), type: 'replaced-by' }] : undefined,
  });
}

/** The patient's dental insurance, when the record has a carrier. */
export function coverageResource(patientId: string, v: PatientValues): Resource | undefined {
  const i = v.insurance;
  if (!i?.carrier) return undefined;
  return dropEmpty({
    resourceType: 'Coverage',
    id: patientId,
    status: 'active',
    beneficiary: ref('Patient', patientId),
    subscriberId: i.memberId,
    payor: [{ display: i.carrier }],
    class: i.groupNumber ? [{ type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/coverage-class', code: 'group' }] }, value: i.groupNumber }] : undefined,
  });
}

/** A clinical note; an amendment is a Composition that `appends` to the note it amends (the note itself is unchanged). */
export function noteResource(n: { id: string; patient_id: string; status: string; signed_at: unknown; created_at: unknown }, body: string, author: string, amends?: string): Resource {
  return dropEmpty({
    resourceType: 'Composition',
    id: n.id,
    status: amends ? 'final' : n.status === 'signed' ? 'final' : 'preliminary',
    type: { coding: [{ system: 'http://loinc.org', code: '28570-0', display: 'Procedure note' }], text: amends ? 'Amendment to a clinical note' : 'Clinical note' },
    subject: ref('Patient', n.patient_id),
    date: instant(n.signed_at ?? n.created_at),
    author: [{ display: author }],
    title: amends ? 'Amendment' : 'Clinical note',
    relatesTo: amends ? [{ code: 'appends', targetReference: ref('Composition', amends) }] : undefined,
    section: [{ title: amends ? 'Amendment' : 'Note', text: narrative(body) }],
  });
}

export type PlanItemContent = ItemContent;

const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;
const PLAN_STATUS: Record<string, string> = { draft: 'draft', presented: 'active', accepted: 'active', declined: 'revoked' };

export function planResource(p: { id: string; patient_id: string; status: string; created_at: unknown }, title: string, items: { phase: unknown; content: PlanItemContent }[], author: string): Resource {
  return dropEmpty({
    resourceType: 'CarePlan',
    id: p.id,
    status: PLAN_STATUS[p.status] ?? 'unknown',
    intent: p.status === 'accepted' ? 'plan' : 'proposal',
    title,
    subject: ref('Patient', p.patient_id),
    created: instant(p.created_at),
    author: { display: author },
    activity: items.map((i) => ({
      detail: dropEmpty({
        kind: 'ServiceRequest',
        code: { coding: [{ system: 'http://www.ada.org/cdt', code: i.content.cdt }], text: i.content.description },
        status: 'not-started',
        description: [
          `Phase ${String(i.phase)}`,
          i.content.tooth ? `tooth ${i.content.tooth}` : undefined,
          i.content.surfaces ? `surfaces ${i.content.surfaces}` : undefined,
          `fee ${money(i.content.fee)}`,
          `insurance estimate ${money(i.content.insurance)}`,
          `patient portion ${money(Math.max(0, i.content.fee - i.content.insurance))}`,
        ]
          .filter(Boolean)
          .join(', '),
      }),
    })),
  });
}

/** The patient's decision on a plan (signed through a patient link): a treatment Consent. */
export function planDecisionResource(d: { id: string; plan_id: string; decision: string; decided_at: unknown; plan_hash: string }, patientId: string, signer: { fullName?: string }): Resource {
  return consent(d.id, patientId, instant(d.decided_at), 'treatment', `Treatment plan ${d.decision}`, d.decision === 'accepted' ? 'permit' : 'deny', ref('CarePlan', d.plan_id), signer.fullName, d.plan_hash);
}

function consent(id: string, patientId: string, when: string, scope: 'treatment' | 'patient-privacy', category: string, provision: 'permit' | 'deny', about: { reference: string }, signedBy: string | undefined, hash: string): Resource {
  return dropEmpty({
    resourceType: 'Consent',
    id,
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: scope }] },
    category: [{ text: category }],
    patient: ref('Patient', patientId),
    dateTime: when,
    performer: signedBy ? [{ display: signedBy }] : undefined,
    sourceReference: about,
    provision: { type: provision },
    identifier: [{ system: `${SYSTEM}:signed-content-sha256`, value: hash }],
  });
}

export interface FormDefinitionLike {
  title: string;
  fields: { name: string; label: string; type: string }[];
}

/** A submitted form: the answers as a QuestionnaireResponse, and the signature as a Consent. */
export function formResources(
  s: { id: string; patient_id: string; submitted_at: unknown; content_hash: string; template_key: string; version: number },
  def: FormDefinitionLike,
  content: { answers: Record<string, string | boolean | null>; signer?: { fullName?: string } },
): Resource[] {
  const items = def.fields.map((f) => {
    const a = content.answers[f.name];
    const answer = a === null || a === undefined || a === '' ? [] : [typeof a === 'boolean' ? { valueBoolean: a } : f.type === 'date' && /^\d{4}-\d{2}-\d{2}$/.test(a) ? { valueDate: a } : { valueString: a }];
    return dropEmpty({ linkId: f.name, text: f.label, answer });
  });
  const response = dropEmpty({
    resourceType: 'QuestionnaireResponse',
    id: s.id,
    questionnaire: `${SYSTEM}:form:${s.template_key}:${s.version}`,
    status: 'completed',
    subject: ref('Patient', s.patient_id),
    authored: instant(s.submitted_at),
    author: content.signer?.fullName ? { display: content.signer.fullName } : undefined,
    item: items,
  });
  return [response, consent(s.id, s.patient_id, instant(s.submitted_at), 'patient-privacy', def.title, 'permit', ref('QuestionnaireResponse', s.id), content.signer?.fullName, s.content_hash)];
}

export const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp', 'application/pdf': 'pdf' };

/** Where a document's file is in the archive (its id, never its title). */
export const documentPath = (d: { id: string; content_type: string }) => `files/${d.id}.${EXTENSIONS[d.content_type] ?? 'bin'}`;

export function documentResource(d: { id: string; patient_id: string; kind: string; content_type: string; created_at: unknown; deleted_at: unknown }, title: string | null, size: number | undefined): Resource {
  return dropEmpty({
    resourceType: 'DocumentReference',
    id: d.id,
    status: d.deleted_at ? 'entered-in-error' : 'current',
    type: { text: d.kind.replace(/_/g, ' ') },
    subject: ref('Patient', d.patient_id),
    date: instant(d.created_at),
    description: title ?? undefined,
    content: [{ attachment: dropEmpty({ contentType: d.content_type, url: d.deleted_at ? undefined : documentPath(d), size, title: title ?? undefined }) }],
  });
}

/** A patient link: what it asked for and how it ended. */
export function linkResource(l: { id: string; patient_id: string; tasks: unknown; created_at: unknown; expires_at: unknown; revoked_at: unknown; locked_at: unknown; verified_at: unknown }, now: Date): Resource {
  const tasks = Array.isArray(l.tasks) ? (l.tasks as string[]) : [];
  const status = l.revoked_at ? 'cancelled' : l.locked_at ? 'failed' : l.verified_at ? 'completed' : new Date(l.expires_at as string) < now ? 'cancelled' : 'requested';
  return dropEmpty({
    resourceType: 'Task',
    id: l.id,
    status,
    intent: 'order',
    code: { text: `Patient link: ${tasks.map((t) => t.replace(/_/g, ' ')).join(', ')}` },
    for: ref('Patient', l.patient_id),
    authoredOn: instant(l.created_at),
    executionPeriod: { start: instant(l.created_at), end: instant(l.expires_at) },
    statusReason: l.locked_at ? { text: 'Locked after repeated wrong dates of birth' } : l.revoked_at ? { text: 'Revoked by the practice' } : undefined,
  });
}

const OUTCOME: Record<string, string> = { allowed: '0', denied: '4', failed: '8' };

export function auditResource(e: { id: string; occurred_at: unknown; actor_type: string; actor_id: unknown; action: string; resource_type: unknown; resource_id: unknown; patient_id: unknown; outcome: string; client_ip: unknown; reason: unknown }, actorName: string | undefined): Resource {
  return dropEmpty({
    resourceType: 'AuditEvent',
    id: String(e.id),
    type: { system: `${SYSTEM}:audit-action`, code: e.action },
    recorded: instant(e.occurred_at),
    outcome: OUTCOME[e.outcome] ?? '8',
    purposeOfEvent: typeof e.reason === 'string' ? [{ text: e.reason.replace(/_/g, ' ') }] : undefined,
    agent: [
      dropEmpty({
        type: { text: e.actor_type.replace(/_/g, ' ') },
        who: dropEmpty({ identifier: { system: `${SYSTEM}:${e.actor_type}`, value: typeof e.actor_id === 'string' ? e.actor_id : e.actor_type }, display: actorName }),
        requestor: true,
        network: typeof e.client_ip === 'string' ? { address: e.client_ip, type: '2' } : undefined,
      }),
    ],
    source: { observer: { display: 'Enamel' } },
    entity: [
      ...(typeof e.patient_id === 'string' ? [{ what: ref('Patient', e.patient_id), role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1' } }] : []),
      ...(typeof e.resource_type === 'string' ? [dropEmpty({ what: { identifier: { system: `${SYSTEM}:${e.resource_type}`, value: typeof e.resource_id === 'string' ? e.resource_id : undefined } } })] : []),
    ],
  });
}

/**
 * An amendment the patient asked for (§164.526), decided: a Composition beside the part of the
 * record it concerns — `appends` to a note's Composition, or naming the plan or the patient in its
 * section — with the requested change, the decision, the reason for a denial and the patient's
 * statement of disagreement. The original is exported unchanged.
 */
export function patientAmendmentResource(
  a: { id: string; targetType: string; targetId: string; requestedChange: string; requestedAt: Date; decision: string; response: string | null; decidedAt: Date | null; disagreement: string | null; disagreementAt: Date | null },
  patientId: string,
): Resource {
  const lines = [
    `Requested by the patient on ${a.requestedAt.toISOString().slice(0, 10)}: ${a.requestedChange}`,
    a.decision === 'accepted' ? `Accepted on ${a.decidedAt?.toISOString().slice(0, 10)}; the amendment: ${a.response ?? ''}` : `Denied on ${a.decidedAt?.toISOString().slice(0, 10)}: ${a.response ?? ''}`,
    ...(a.disagreement ? [`The patient's statement of disagreement (${a.disagreementAt?.toISOString().slice(0, 10)}): ${a.disagreement}`] : []),
  ];
  const target = a.targetType === 'clinical_note' ? ref('Composition', a.targetId) : a.targetType === 'treatment_plan' ? ref('CarePlan', a.targetId) : ref('Patient', a.targetId);
  return dropEmpty({
    resourceType: 'Composition',
    id: a.id,
    status: 'final',
    type: { text: a.decision === 'accepted' ? 'Amendment requested by the patient (accepted)' : 'Amendment requested by the patient (denied)' },
    subject: ref('Patient', patientId),
    date: instant(a.decidedAt ?? a.requestedAt),
    author: [{ display: 'The practice' }],
    title: 'Patient-requested amendment',
    relatesTo: a.targetType === 'clinical_note' ? [{ code: 'appends', targetReference: target }] : undefined,
    section: [{ title: 'Amendment', text: narrative(lines.join('\n')), entry: [target] }],
  });
}
