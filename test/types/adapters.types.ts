// Compile-only type test, never run: `npm test` type-checks this file. The adapters' types are structural,
// so a queue of every supported major must fit, and the per-job options must follow the major installed.
import { type JobsOptions as JobsOptions6, Queue as Queue6 } from 'bullmq';
import { type JobsOptions as JobsOptions5, Queue as Queue5 } from 'bullmq-5';
import { PgBoss as PgBoss12, type SendOptions as SendOptions12 } from 'pg-boss';
import PgBoss10 from 'pg-boss-10';
import PgBoss11 from 'pg-boss-11';
import {
  type AddToBullmq,
  type BullmqJobOptionsOf,
  type BullmqQueueLike,
  bullmq,
} from '../../src/adapters/bullmq.js';
import {
  type PgBossLike,
  type PgBossSendOptionsOf,
  pgBoss,
  type SendToPgBoss,
} from '../../src/adapters/pg-boss.js';
import type { Rainchecked, Scheduled } from '../../src/index.js';

/** Compiles only when A and B are the same type. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const same = <A, B>(proof: Equal<A, B>) => proof;

// BullMQ 6 and 5: a Queue fits, typed queues too, and the options are that major's JobsOptions.
const queue6 = new Queue6('emails');
const queue5 = new Queue5('emails');
const typed6 = new Queue6<{ to: string }, void, 'welcome'>('emails');
const asLike: BullmqQueueLike[] = [queue6, queue5, typed6];
void asLike;
same<BullmqJobOptionsOf<Queue6>, JobsOptions6>(true);
same<BullmqJobOptionsOf<Queue5>, JobsOptions5>(true);

const toQueue6 = bullmq(queue6, { dedupeAcrossRequests: true });
const toQueue5 = bullmq(queue5);
const added: Promise<string> = toQueue6('welcome', { to: 'a@example.com' }, { delay: 1000, jobId: 'a' });
const scheduled: Scheduled = toQueue5.schedule('welcome', { to: 'a@example.com' }, { priority: 1 });
const asAlias: Rainchecked<AddToBullmq<Queue6>> = toQueue6;
const asDefault: AddToBullmq = toQueue6; // the old, non-generic spelling still works
void [added, scheduled, asAlias, asDefault, bullmq(typed6)];
// @ts-expect-error an option no JobsOptions has
toQueue6('welcome', {}, { jobIdd: 'a' });
// @ts-expect-error an option of the wrong type
toQueue5.schedule('welcome', {}, { delay: 'soon' });
// @ts-expect-error not a queue
bullmq({ add: () => Promise.resolve({}) });
// @ts-expect-error not a queue
bullmq('emails');

// pg-boss 12 (named export), 11 and 10 (`export =`): an instance fits; options are that major's SendOptions.
const boss12 = new PgBoss12('postgres://localhost/app');
const boss11 = new PgBoss11('postgres://localhost/app');
const boss10 = new PgBoss10('postgres://localhost/app');
const bossLikes: PgBossLike[] = [boss12, boss11, boss10];
void bossLikes;
same<PgBossSendOptionsOf<PgBoss12>, SendOptions12>(true);
same<PgBossSendOptionsOf<PgBoss11>, PgBoss11.SendOptions>(true);
same<PgBossSendOptionsOf<PgBoss10>, PgBoss10.SendOptions>(true);

const toBoss12 = pgBoss(boss12, { attempts: 3 });
const toBoss11 = pgBoss(boss11);
const toBoss10 = pgBoss(boss10);
const sent: Promise<string | null> = toBoss12('welcome', { to: 'a@example.com' }, { singletonKey: 'a' });
const viaSchedule: Scheduled = toBoss11.schedule('welcome', { to: 'a@example.com' }, { startAfter: 60 });
const sendAlias: Rainchecked<SendToPgBoss<PgBoss10>> = toBoss10;
const sendDefault: SendToPgBoss = toBoss12;
void [sent, viaSchedule, sendAlias, sendDefault];
// @ts-expect-error an option no SendOptions has
toBoss12('welcome', {}, { singletonKeyy: 'a' });
// @ts-expect-error an option of the wrong type
toBoss10.schedule('welcome', {}, { priority: 'high' });
// @ts-expect-error data must be an object
toBoss11('welcome', 'data');
// @ts-expect-error not a PgBoss
pgBoss({ send: 'welcome' });
