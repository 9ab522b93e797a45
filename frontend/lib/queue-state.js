// queue-state.js — the one reducer of the queue part of a hall's state (Q5, Q6, Q8), used by
// every public screen: hall display, window display, kiosk, citizen's ticket page.
//
// The state is the `queue` of the hall snapshot (hub/services/queue_views.py QueueState):
//   {service_day, windows: [WindowView], groups: [GroupView], calls: [CallView]}
// Events on hall:<id> (QueueEvent data) are applied with applyQueueEvent():
// - the event's `window` replaces the window of the same window_id;
// - `waiting` ([[group_id, waiting], …], every group) sets the waiting counts;
// - `call` (ticket_called: call, recall, return) is put first in `calls` (RECENT_CALLS kept);
// - queue_configured carries a whole QueueState: it replaces the state.
// A group's open_windows is recomputed from the windows (open and serving it), as the hub
// counts it, so estimates follow a window that opens or pauses without a new snapshot.
//
// Pure functions, no DOM: the state objects are plain JSON and never mutated in place.

export const RECENT_CALLS = 10;

/** The events of hall:<id> whose data is a QueueEvent. */
export const QUEUE_EVENTS = new Set([
  "ticket_issued",
  "ticket_called",
  "ticket_skipped",
  "ticket_held",
  "ticket_transferred",
  "ticket_finished",
  "window_changed",
]);

/** The event that replaces the queue state wholesale (configuration changed). */
export const QUEUE_CONFIGURED = "queue_configured";

export function isQueueEvent(name) {
  return QUEUE_EVENTS.has(name) || name === QUEUE_CONFIGURED;
}

const EMPTY = Object.freeze({ service_day: null, windows: [], groups: [], calls: [] });

/** The state from a hall snapshot's `queue` (or an empty one when the hub sent none). */
export function queueFromSnapshot(queue) {
  if (!queue) return EMPTY;
  return withOpenWindows({
    service_day: queue.service_day ?? null,
    windows: [...(queue.windows ?? [])],
    groups: [...(queue.groups ?? [])],
    calls: (queue.calls ?? []).slice(0, RECENT_CALLS),
  });
}

/**
 * The state after one hall event ({name, data}); the same state object when the event is
 * not a queue event.
 */
export function applyQueueEvent(state, event) {
  if (event.name === QUEUE_CONFIGURED) return queueFromSnapshot(event.data);
  if (!QUEUE_EVENTS.has(event.name) || !event.data) return state;
  const data = event.data;
  let { windows, groups, calls } = state;
  if (data.window) {
    const index = windows.findIndex((w) => w.window_id === data.window.window_id);
    windows =
      index === -1
        ? [...windows, data.window].sort((a, b) => a.number - b.number)
        : windows.map((w, i) => (i === index ? data.window : w));
  }
  if (Array.isArray(data.waiting) && data.waiting.length) {
    const counts = new Map(data.waiting.map(([groupId, waiting]) => [groupId, waiting]));
    groups = groups.map((g) => (counts.has(g.group_id) ? { ...g, waiting: counts.get(g.group_id) } : g));
  }
  if (data.call) calls = [data.call, ...calls].slice(0, RECENT_CALLS);
  return withOpenWindows({ ...state, windows, groups, calls });
}

function withOpenWindows(state) {
  const groups = state.groups.map((g) => {
    const open = state.windows.filter((w) => w.status === "open" && w.group_ids.includes(g.group_id)).length;
    return open === g.open_windows ? g : { ...g, open_windows: open };
  });
  return { ...state, groups };
}

/** Expected wait for `ahead` tickets (hub.domain.queue.ahead_estimate_seconds). */
export function estimateSeconds(ahead, serviceSeconds, openWindows) {
  if (ahead <= 0) return 0;
  return Math.round((ahead * serviceSeconds) / Math.max(openWindows, 1));
}

/** A group's estimate for a ticket issued now: everyone waiting is ahead of it. */
export function groupEstimateSeconds(group) {
  return estimateSeconds(group.waiting, group.service_seconds, group.open_windows);
}

/** Whole minutes, rounded up: 0 s → 0, 1–60 s → 1, 61 s → 2. */
export function minutes(seconds) {
  return Math.max(0, Math.ceil(seconds / 60));
}

/** "约 12 分钟", "无需等待" for nothing ahead. */
export function minutesText(seconds) {
  const n = minutes(seconds);
  return n === 0 ? "无需等待" : `约 ${n} 分钟`;
}

/** The group's waiting count in `state`, by id (0 when unknown). */
export function waitingOf(state, groupId) {
  return state.groups.find((g) => g.group_id === groupId)?.waiting ?? 0;
}

/** Tickets waiting for any of a window's groups. */
export function windowQueueLength(state, window) {
  return window.group_ids.reduce((sum, id) => sum + waitingOf(state, id), 0);
}

export const WINDOW_STATUS_TEXT = Object.freeze({ open: "办理中", paused: "暂停", closed: "关闭" });

/** Plain words for a ticket's status on the citizen's page. */
export const TICKET_STATUS_TEXT = Object.freeze({
  waiting: "排队中",
  called: "已叫号",
  held: "暂挂",
  done: "已办结",
  no_show: "已过号",
  expired: "已过期",
});

/** The hall-local date ("2026-11-25") of a unix time: the service day of hub.domain.queue. */
export function serviceDay(unixSeconds, timeZone) {
  const parts = { timeZone, year: "numeric", month: "2-digit", day: "2-digit" };
  return new Intl.DateTimeFormat("en-CA", parts).format(new Date(unixSeconds * 1000));
}

/**
 * Whether a screen should ask for a fresh snapshot because its state is of another service
 * day than today's (past the hall's midnight no event says that yesterday's calls and
 * waiting tickets are gone). At most once per `retrySeconds`, so a hub whose clock is a
 * little behind is asked again later, not in a loop.
 */
export class DayWatch {
  constructor(retrySeconds = 60) {
    this.retrySeconds = retrySeconds;
    this._askedAt = -Infinity;
  }

  due(state, timeZone, nowSeconds) {
    if (!state.service_day || !timeZone) return false;
    if (serviceDay(nowSeconds, timeZone) === state.service_day) return false;
    if (nowSeconds - this._askedAt < this.retrySeconds) return false;
    this._askedAt = nowSeconds;
    return true;
  }
}

/** An ISO time of the hub's JSON (msgspec datetimes) in unix seconds; null stays null. */
export function unixSeconds(iso) {
  if (iso === null || iso === undefined) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms / 1000;
}
