/**
 * The few types every layer shares, in one neutral module (no imports): the request facts a service
 * records with its audit events, a service's answer to a form, and the injectable clock.
 */

/** Request facts a service records with its audit events. */
export interface Meta {
  ip: string;
  requestId: string;
  now: Date;
}

/** A service's answer to a form: the value, or an error for the form (beside `field` when it names one). */
export type FormResult<T> = { ok: true; value: T } | { ok: false; error: string; field?: string; refused?: boolean };

/** Milliseconds since the epoch; tests pass a controllable one. */
export type Clock = () => number;
