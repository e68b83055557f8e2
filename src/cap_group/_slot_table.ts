/**
 * The shared-memory slot table of a cap group: one budget of server
 * connections for the pools of several isolates, kept in a
 * `SharedArrayBuffer` and changed only with `Atomics`, so reserving a slot
 * costs a compare-and-swap, never a message.
 *
 * Layout (Int32 cells): a header, then one row per member (a pool in one
 * isolate), then one BigInt64 heartbeat per row. Every number that matters
 * for the cap (`used`) is changed in one atomic step; the per-row figures say
 * who holds what, so the slots of a dead member can be given back.
 *
 * @module
 */

/** Most members (pools in isolates) of one group at once. */
export const MAX_ROWS = 128;

const MAGIC = 0x7470_6367; // "tpcg"
// Header cells.
const H_MAGIC = 0;
const H_MAX = 1;
/** Slots reserved: connections open, opening or closing, in every isolate. */
const H_USED = 2;
/** Connection attempts waiting for a slot, in every isolate. */
const H_QUEUED = 3;
/** The last wait ticket handed out (FIFO order across isolates). */
const H_TICKET = 4;
/** Slots whose idle connection is being closed to make room for a waiter. */
const H_SHED = 5;
/** Sum of the live members' minSize. */
const H_MINSUM = 6;
const H_TARGET = 7;
const H_ID = 8;
/** Rows ever used: scans stop there. */
const H_ROWS = 9;
const HEADER = 16;
// Row cells.
const R_STATE = 0;
const R_ID = 1;
const R_HELD = 2;
const R_QUEUED = 3;
const R_TICKET = 4;
const R_MIN = 5;
const R_WAITING = 6;
const R_SHED = 7;
const ROW = 8;

const FREE = 0;
const LIVE = 1;
/** Reclaimed after its heartbeat went stale; reusable like a free row. */
const DEAD = 2;

const INT_CELLS = HEADER + MAX_ROWS * ROW;
/** Bytes of one table. */
export const TABLE_BYTES = INT_CELLS * 4 + MAX_ROWS * 8;

/** A 32-bit hash of a text (FNV-1a), to compare connection targets without storing them. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Why a member cannot join a table. */
export type JoinRefusal = "maxSize" | "target" | "full";

/** A member's place in the table. */
export interface Row {
  readonly index: number;
  readonly id: number;
}

/**
 * One view of a shared slot table. Every isolate builds its own view over the
 * same buffer; the view keeps no state of its own.
 */
export class SlotTable {
  readonly buffer: SharedArrayBuffer;
  readonly #i: Int32Array;
  readonly #beats: BigInt64Array;

  /** A view over an existing table (received from another isolate). */
  constructor(buffer: SharedArrayBuffer) {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== TABLE_BYTES) {
      throw new TypeError("Not a cap group slot table");
    }
    this.buffer = buffer;
    this.#i = new Int32Array(buffer, 0, INT_CELLS);
    this.#beats = new BigInt64Array(buffer, INT_CELLS * 4, MAX_ROWS);
    if (Atomics.load(this.#i, H_MAGIC) !== MAGIC) throw new TypeError("Not a cap group slot table");
  }

  /** A new table for a budget of `max` connections to the target hashed as `target`. */
  static create(max: number, target: number): SlotTable {
    if (!Number.isInteger(max) || max < 1 || max > 0x7fff_ffff) throw new RangeError(`Bad cap ${max}`);
    const buffer = new SharedArrayBuffer(TABLE_BYTES);
    const i = new Int32Array(buffer, 0, INT_CELLS);
    i[H_MAX] = max;
    i[H_TARGET] = target;
    i[H_ID] = (Math.random() * 0x7fff_ffff) | 0;
    Atomics.store(i, H_MAGIC, MAGIC); // last: the table is complete before anyone can recognise it
    return new SlotTable(buffer);
  }

  /** Identifies the table (to notice two tables for one group). */
  get id(): number {
    return Atomics.load(this.#i, H_ID);
  }
  get max(): number {
    return Atomics.load(this.#i, H_MAX);
  }
  get target(): number {
    return Atomics.load(this.#i, H_TARGET);
  }
  /** Slots reserved in the whole group. */
  get used(): number {
    return Atomics.load(this.#i, H_USED);
  }
  /** Connection attempts waiting for a slot in the whole group. */
  get queued(): number {
    return Atomics.load(this.#i, H_QUEUED);
  }
  /** Idle connections being closed to make room for another member's waiter. */
  get shedding(): number {
    return Atomics.load(this.#i, H_SHED);
  }
  /** Sum of the live members' minSize. */
  get minSum(): number {
    return Atomics.load(this.#i, H_MINSUM);
  }

  /**
   * Takes a free row. `minSize` is counted against the budget: the live
   * members together keep at most `max - 1` connections warm, so one slot is
   * always left for growth; the granted minSize may be lower than asked.
   */
  join(max: number, target: number, minSize: number, now: number): { row: Row; minSize: number } | JoinRefusal {
    if (max !== this.max) return "maxSize";
    if (target !== this.target) return "target";
    const i = this.#i;
    for (let index = 0; index < MAX_ROWS; index++) {
      const cell = HEADER + index * ROW;
      const state = Atomics.load(i, cell + R_STATE);
      if (state === LIVE) continue;
      if (Atomics.compareExchange(i, cell + R_STATE, state, LIVE) !== state) continue;
      const id = ((Math.random() * 0x7fff_fffe) | 0) + 1;
      Atomics.store(i, cell + R_ID, id);
      // Counts left by a member that raced its own reclaim belong to nobody now.
      const left = Atomics.exchange(i, cell + R_HELD, 0);
      if (left !== 0) Atomics.sub(i, H_USED, left);
      Atomics.store(i, cell + R_QUEUED, 0);
      Atomics.store(i, cell + R_TICKET, 0);
      Atomics.store(i, cell + R_WAITING, 0);
      Atomics.store(i, cell + R_SHED, 0);
      Atomics.store(this.#beats, index, BigInt(now));
      const granted = this.#addMin(minSize);
      Atomics.store(i, cell + R_MIN, granted);
      for (;;) { // H_ROWS = max(H_ROWS, index + 1)
        const rows = Atomics.load(i, H_ROWS);
        if (rows > index || Atomics.compareExchange(i, H_ROWS, rows, index + 1) === rows) break;
      }
      return { row: { index, id }, minSize: granted };
    }
    return "full";
  }

  #addMin(wanted: number): number {
    const i = this.#i;
    for (;;) {
      const sum = Atomics.load(i, H_MINSUM);
      const granted = Math.max(0, Math.min(wanted, this.max - 1 - sum));
      if (Atomics.compareExchange(i, H_MINSUM, sum, sum + granted) === sum) return granted;
    }
  }

  /**
   * Changes the row's share of the warm connections (its pool's `resize()`),
   * clamped like at `join`.
   *
   * @returns The minSize granted.
   */
  setMin(row: Row, minSize: number): number {
    const cell = HEADER + row.index * ROW;
    const old = Atomics.exchange(this.#i, cell + R_MIN, 0);
    if (old !== 0) Atomics.sub(this.#i, H_MINSUM, old);
    const granted = this.#addMin(minSize);
    Atomics.store(this.#i, cell + R_MIN, granted);
    return granted;
  }

  /** Whether the row is still this member's (not reclaimed, not reused). */
  owns(row: Row): boolean {
    const cell = HEADER + row.index * ROW;
    return Atomics.load(this.#i, cell + R_STATE) === LIVE && Atomics.load(this.#i, cell + R_ID) === row.id;
  }

  /** Rows in use (live members). */
  members(): number {
    const rows = Atomics.load(this.#i, H_ROWS);
    let n = 0;
    for (let r = 0; r < rows; r++) if (Atomics.load(this.#i, HEADER + r * ROW + R_STATE) === LIVE) n++;
    return n;
  }

  /** Gives the row back; its slots must have been released. */
  leave(row: Row): void {
    if (!this.owns(row)) return;
    this.#empty(row.index);
    Atomics.store(this.#i, HEADER + row.index * ROW + R_STATE, FREE);
  }

  /** Subtracts what a row holds from the group totals. */
  #empty(index: number): void {
    const i = this.#i;
    const cell = HEADER + index * ROW;
    const held = Atomics.exchange(i, cell + R_HELD, 0);
    if (held !== 0) Atomics.sub(i, H_USED, held);
    const queued = Atomics.exchange(i, cell + R_QUEUED, 0);
    if (queued !== 0) Atomics.sub(i, H_QUEUED, queued);
    const shed = Atomics.exchange(i, cell + R_SHED, 0);
    if (shed !== 0) Atomics.sub(i, H_SHED, shed);
    const min = Atomics.exchange(i, cell + R_MIN, 0);
    if (min !== 0) Atomics.sub(i, H_MINSUM, min);
    Atomics.store(i, cell + R_TICKET, 0);
    Atomics.store(i, cell + R_WAITING, 0);
  }

  /**
   * Reserves one slot for a connection attempt of `row`. Refused when the
   * group is full, or when attempts wait and this row's oldest ticket is not
   * the oldest of the group (FIFO across isolates).
   */
  tryReserve(row: Row): boolean {
    const i = this.#i;
    if (Atomics.load(i, H_QUEUED) !== 0 && !this.#first(row.index)) return false;
    return this.forceReserve(row, false);
  }

  /**
   * Reserves a slot ignoring the queue; with `over`, even beyond the cap
   * (a reclaimed member counting connections it still has).
   */
  forceReserve(row: Row, over: boolean): boolean {
    const i = this.#i;
    for (;;) {
      const used = Atomics.load(i, H_USED);
      if (!over && used >= Atomics.load(i, H_MAX)) return false;
      if (Atomics.compareExchange(i, H_USED, used, used + 1) === used) break;
    }
    Atomics.add(i, HEADER + row.index * ROW + R_HELD, 1);
    return true;
  }

  /** Frees one slot of `row` once its connection finished closing; `shed` if it was closed to make room. */
  release(row: Row, shed = false): void {
    const i = this.#i;
    const cell = HEADER + row.index * ROW;
    Atomics.sub(i, cell + R_HELD, 1);
    Atomics.sub(i, H_USED, 1);
    if (shed) {
      Atomics.sub(i, cell + R_SHED, 1);
      Atomics.sub(i, H_SHED, 1);
    }
  }

  /** A new wait ticket: later tickets are served after earlier ones. */
  nextTicket(): number {
    let t = Atomics.add(this.#i, H_TICKET, 1) + 1;
    if (t === 0) t = Atomics.add(this.#i, H_TICKET, 1) + 1; // 0 means "no ticket"
    return t;
  }

  /** Publishes the row's waiting attempts: how many, and the oldest one's ticket (0 = none). */
  setQueue(row: Row, delta: number, oldestTicket: number): void {
    const cell = HEADER + row.index * ROW;
    if (delta !== 0) {
      Atomics.add(this.#i, cell + R_QUEUED, delta);
      Atomics.add(this.#i, H_QUEUED, delta);
    }
    Atomics.store(this.#i, cell + R_TICKET, oldestTicket);
  }

  /** Whether the row's oldest ticket is the oldest among the live rows. */
  #first(index: number): boolean {
    const i = this.#i;
    const mine = Atomics.load(i, HEADER + index * ROW + R_TICKET);
    if (mine === 0) return false;
    const rows = Atomics.load(i, H_ROWS);
    for (let r = 0; r < rows; r++) {
      if (r === index) continue;
      const cell = HEADER + r * ROW;
      const t = Atomics.load(i, cell + R_TICKET);
      // Tickets wrap around: compare by difference.
      if (t !== 0 && Atomics.load(i, cell + R_STATE) === LIVE && ((t - mine) | 0) < 0) return false;
    }
    return true;
  }

  /**
   * The waiting attempts `row` should make room for: those of members that
   * hold no slot, or at least two fewer than `row` keeps (not counting what it
   * is closing already). So every waiting member gets a connection, and busy
   * members' shares even out to within one, rather than a member that is busy
   * all the time draining one that is busy now and then.
   */
  #owed(row: Row, busy: boolean): number {
    const i = this.#i;
    const cell = HEADER + row.index * ROW;
    const mine = Atomics.load(i, cell + R_HELD) - Atomics.load(i, cell + R_SHED);
    const rows = Atomics.load(i, H_ROWS);
    let owed = 0;
    for (let r = 0; r < rows; r++) {
      if (r === row.index) continue;
      const other = HEADER + r * ROW;
      const queued = Atomics.load(i, other + R_QUEUED);
      if (queued === 0 || Atomics.load(i, other + R_STATE) !== LIVE) continue;
      const held = Atomics.load(i, other + R_HELD);
      // An idle connection is owed to any waiter; a busy one only to a member behind by two or more.
      if (!busy || held === 0 || held + 1 < mine) owed += queued;
    }
    return owed;
  }

  /**
   * How many connections `row` should close now so that the attempts it
   * owes room fit: those attempts minus free slots minus closes under way.
   * Free slots go negative when the group is over its budget (a reclaimed
   * member woke up, two tables merged): that excess is owed too.
   *
   * @param busy The connection to close is a returned one, wanted by a waiter
   *   of `row`'s own: owed only to members behind by two or more.
   */
  roomNeeded(row: Row, busy = false): number {
    const i = this.#i;
    const free = Atomics.load(i, H_MAX) - Atomics.load(i, H_USED);
    return this.#owed(row, busy) - free - Atomics.load(i, H_SHED);
  }

  /** Whether the group is over its budget or has attempts waiting: the cheap test before `claimShed`. */
  contended(): boolean {
    const i = this.#i;
    return Atomics.load(i, H_QUEUED) !== 0 || Atomics.load(i, H_USED) > Atomics.load(i, H_MAX);
  }

  /** Claims one close-to-make-room for `row`, if room is still needed (`busy`: see `roomNeeded`). */
  claimShed(row: Row, busy = false): boolean {
    const i = this.#i;
    for (;;) {
      const shed = Atomics.load(i, H_SHED);
      if (this.roomNeeded(row, busy) <= 0) return false;
      if (Atomics.compareExchange(i, H_SHED, shed, shed + 1) === shed) break;
    }
    Atomics.add(i, HEADER + row.index * ROW + R_SHED, 1);
    return true;
  }

  /** Undoes a `claimShed` that found nothing to close. */
  unclaimShed(row: Row): void {
    Atomics.sub(this.#i, HEADER + row.index * ROW + R_SHED, 1);
    Atomics.sub(this.#i, H_SHED, 1);
  }

  /** Publishes the requests waiting in the member (for the others' stats). */
  setWaiting(row: Row, waiting: number): void {
    Atomics.store(this.#i, HEADER + row.index * ROW + R_WAITING, waiting);
  }

  /** Requests waiting in the live members other than `row`. */
  waitingElsewhere(row: Row | undefined): number {
    const i = this.#i;
    const rows = Atomics.load(i, H_ROWS);
    let n = 0;
    for (let r = 0; r < rows; r++) {
      if (r === row?.index) continue;
      const cell = HEADER + r * ROW;
      if (Atomics.load(i, cell + R_STATE) === LIVE) n += Atomics.load(i, cell + R_WAITING);
    }
    return n;
  }

  /** Slots held by the row (as the table counts them). */
  held(row: Row): number {
    return Atomics.load(this.#i, HEADER + row.index * ROW + R_HELD);
  }

  /** Records that the member is alive at `now` (ms since the epoch). */
  beat(row: Row, now: number): void {
    Atomics.store(this.#beats, row.index, BigInt(now));
  }

  /**
   * Reclaims every live row whose last heartbeat is older than `staleMs`:
   * its slots, waiting attempts and minSize go back to the group.
   *
   * @returns How many rows were reclaimed.
   */
  reclaimStale(now: number, staleMs: number): number {
    const i = this.#i;
    const rows = Atomics.load(i, H_ROWS);
    let reclaimed = 0;
    for (let r = 0; r < rows; r++) {
      const cell = HEADER + r * ROW;
      if (Atomics.load(i, cell + R_STATE) !== LIVE) continue;
      if (now - Number(Atomics.load(this.#beats, r)) <= staleMs) continue;
      // Only the one who flips LIVE -> DEAD empties the row.
      if (Atomics.compareExchange(i, cell + R_STATE, LIVE, DEAD) !== LIVE) continue;
      this.#empty(r);
      reclaimed++;
    }
    return reclaimed;
  }
}
