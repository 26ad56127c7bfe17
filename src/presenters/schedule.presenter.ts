import type { DayAppointment, DayView } from '../services/schedule/schedule.service.js';

export type GridCell = { type: 'free'; chairId: string; time: string } | { type: 'appointment'; a: DayAppointment; rows: number } | { type: 'covered' };

/**
 * The day as a table without JavaScript: a row per 15 minutes, a column per chair; an appointment
 * spans the rows it lasts (rowspan), the cells it covers are left out. Cancelled and no-show
 * appointments free their chair, so they are listed under the table, not in it.
 */
export function dayGrid(view: DayView): { time: string; cells: GridCell[] }[] {
  const minuteOf = (d: Date) => {
    const [h, m] = new Intl.DateTimeFormat('en-GB', { timeZone: view.timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(d).split(':').map(Number) as [number, number];
    return h * 60 + m;
  };
  const toMinute = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5));
  const live = view.appointments.filter((a) => a.status !== 'cancelled' && a.status !== 'no_show');
  const covered = new Set<string>();
  return view.slots.map((time, i) => {
    const from = toMinute(time);
    const cells: GridCell[] = view.chairs.map((chair) => {
      const key = `${chair.id}|${i}`;
      if (covered.has(key)) return { type: 'covered' };
      const a = live.find((x) => x.chairId === chair.id && Math.max(minuteOf(x.startsAt), toMinute(view.slots[0]!)) >= from && Math.max(minuteOf(x.startsAt), toMinute(view.slots[0]!)) < from + 15);
      if (!a) return { type: 'free', chairId: chair.id, time };
      const rows = Math.max(1, Math.min(view.slots.length - i, Math.ceil((minuteOf(a.endsAt) - from) / 15)));
      for (let k = 1; k < rows; k++) covered.add(`${chair.id}|${i + k}`);
      return { type: 'appointment', a, rows };
    });
    return { time, cells };
  });
}
