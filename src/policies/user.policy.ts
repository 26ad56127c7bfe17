import { can, type StaffActor } from './actor.js';

/** A staff account as the user policy sees it. */
export interface UserRecord {
  practiceId: string;
  id: string;
  isOwner: boolean;
}

const manages = (actor: StaffActor, target: UserRecord): boolean => can(actor, 'users.manage') && target.practiceId === actor.practiceId;
/** SECURITY: only an owner may act on an owner's account. */
const mayTouch = (actor: StaffActor, target: UserRecord): boolean => manages(actor, target) && (!target.isOwner || actor.isOwner);

/** Who may see and change staff accounts. One function per action; record-level checks included. */
export const userPolicy = {
  index: (actor: StaffActor) => can(actor, 'users.manage'),
  invite: (actor: StaffActor) => can(actor, 'users.manage'),
  show: (actor: StaffActor, target: UserRecord) => manages(actor, target),
  update: (actor: StaffActor, target: UserRecord) => mayTouch(actor, target) && target.id !== actor.id,
  deactivate: (actor: StaffActor, target: UserRecord) => mayTouch(actor, target) && target.id !== actor.id,
  reactivate: (actor: StaffActor, target: UserRecord) => mayTouch(actor, target),
  endSessions: (actor: StaffActor, target: UserRecord) => mayTouch(actor, target),
  resetMfa: (actor: StaffActor, target: UserRecord) => mayTouch(actor, target) && target.id !== actor.id,
};
