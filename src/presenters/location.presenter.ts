import type { LocationRow } from '../queries/practices.queries.js';

/** A location's postal address as display lines: street, suite, "City, Region Postcode" (empty parts left out). */
export function addressLines(l: Pick<LocationRow, 'address_line1' | 'address_line2' | 'city' | 'region' | 'postal_code'>): string[] {
  return [l.address_line1, l.address_line2, [l.city, [l.region, l.postal_code].filter(Boolean).join(' ')].filter(Boolean).join(', ')].filter(Boolean);
}
