import type { DayAppointment, DayView } from '../services/schedule/schedule.service.js';

export type GridCell = { type: 'free'; chairId: string; time: string } | { type: 'appointment'; items: DayAppointment[]; rows: number } | { type: 'covered' };

/**
 * The day as a table without JavaScript: a row per 15 minutes, a column per chair; the appointments
 * starting in a row's quarter hour share one cell, which spans the rows they last — but never the
 * row where the chair's next appointment starts (so an appointment off the quarter hour is never
 * hidden under the one before it). Cancelled and no-show appointments free their chair, so they
 * are listed under the table, not in it.
 */
export function dayGrid(view: DayView): { time: string; cells: GridCell[] }[] {
  // PERF: one formatter for the whole grid, and each appointment's row computed once.
  const clock = new Intl.DateTimeFormat('en-GB', { timeZone: view.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const minuteOf = (d: Date) => {
    const [h, m] = clock.format(d).split(':').map(Number) as [number, number];
    return h * 60 + m;
  };
  const toMinute = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
  const first = toMinute(view.slots[0] ?? '00:00');
  const startMinute = new Map(view.appointments.map((a) => [a.id, minuteOf(a.startsAt)]));
  const slotOf = (a: DayAppointment) => Math.max(0, Math.floor((Math.max(startMinute.get(a.id)!, first) - first) / 15));
  const live = view.appointments.filter((a) => a.status !== 'cancelled' && a.status !== 'no_show');
  const byChair = new Map(view.chairs.map((c) => [c.id, live.filter((a) => a.chairId === c.id)]));
  const covered = new Set<string>();
  return view.slots.map((time, i) => {
    const cells: GridCell[] = view.chairs.map((chair) => {
      const mine = byChair.get(chair.id) ?? [];
      const items = mine.filter((a) => slotOf(a) === i);
      if (covered.has(`${chair.id}|${i}`) && items.length === 0) return { type: 'covered' };
      if (items.length === 0) return { type: 'free', chairId: chair.id, time };
      const lastEnd = Math.max(...items.map((a) => startMinute.get(a.id)! + a.minutes));
      const nextStart = Math.min(view.slots.length, ...mine.map(slotOf).filter((s) => s > i));
      const rows = Math.max(1, Math.min(nextStart - i, Math.ceil((lastEnd - (first + i * 15)) / 15)));
      for (let k = 1; k < rows; k++) covered.add(`${chair.id}|${i + k}`);
      return { type: 'appointment', items, rows };
    });
    return { time, cells };
  });
}
