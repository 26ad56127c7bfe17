import { expect } from 'chai';
import { dayGrid } from '../../src/presenters/schedule.presenter.js';
import type { DayAppointment, DayView } from '../../src/services/schedule/schedule.service.js';

/** The day table: every live appointment appears exactly once, also off the quarter hour (a 45-minute slot every 50 minutes). */
describe('the day view grid', () => {
  const appt = (id: string, chairId: string, start: string, minutes: number, status: DayAppointment['status'] = 'scheduled'): DayAppointment => ({
    id, patientId: id, patientName: id, chairId, providerId: 'p', providerName: 'P', kindName: 'Cleaning', startsAt: new Date(start), endsAt: new Date(Date.parse(start) + minutes * 60_000), minutes, status, cancelReason: null, note: null,
  });
  const view = (appointments: DayAppointment[]): DayView => ({
    day: '2026-03-10', timeZone: 'UTC', location: { id: 'l', name: 'L' }, locations: [], chairs: [{ id: 'c1', name: 'Chair 1' }, { id: 'c2', name: 'Chair 2' }], providers: [], kinds: [], appointments, mayBook: true,
    slots: Array.from({ length: 48 }, (_, i) => `${String(7 + Math.floor(i / 4)).padStart(2, '0')}:${String((i % 4) * 15).padStart(2, '0')}`),
  });
  const shown = (grid: ReturnType<typeof dayGrid>) => grid.flatMap((r) => r.cells.flatMap((c) => (c.type === 'appointment' ? c.items.map((a) => a.id) : [])));

  it('ten 45-minute appointments every 50 minutes on one chair: all ten shown once, none hidden under the one before', () => {
    const list = Array.from({ length: 10 }, (_, k) => appt(`a${k}`, 'c1', new Date(Date.parse('2026-03-10T08:00:00Z') + k * 50 * 60_000).toISOString(), 45));
    const grid = dayGrid(view(list));
    expect(shown(grid)).to.deep.equal(list.map((a) => a.id));
    // Every row has one cell per chair once the spans are counted.
    const width = grid.map((r, i) => r.cells.filter((c) => c.type !== 'covered').length + grid.slice(0, i).reduce((n, prev, j) => n + prev.cells.filter((c) => c.type === 'appointment' && j + c.rows > i).length, 0));
    expect(new Set(width)).to.deep.equal(new Set([2]));
  });

  it('an hour spans four rows; two starting in one quarter hour share a cell; cancelled and missed ones are not in the table', () => {
    const grid = dayGrid(view([appt('hour', 'c2', '2026-03-10T09:00:00Z', 60), appt('x', 'c1', '2026-03-10T10:00:00Z', 5), appt('y', 'c1', '2026-03-10T10:05:00Z', 5), appt('gone', 'c1', '2026-03-10T11:00:00Z', 30, 'cancelled'), appt('missed', 'c2', '2026-03-10T11:00:00Z', 30, 'no_show')]));
    const cell = grid.flatMap((r) => r.cells).find((c) => c.type === 'appointment' && c.items[0]!.id === 'hour');
    expect(cell).to.deep.include({ rows: 4 });
    const shared = grid.flatMap((r) => r.cells).find((c) => c.type === 'appointment' && c.items.length === 2);
    expect(shared && shared.type === 'appointment' && shared.items.map((a) => a.id)).to.deep.equal(['x', 'y']);
    expect(shown(grid)).to.not.include.members(['gone', 'missed']);
  });
});
