// Hall display (综合屏, Q5): the latest call big, the recent calls, waiting counts and estimates
// per service group, every window's state, and the hall's notices scrolling at the bottom.
// Every call is spoken (lib/announcer.js), in order, never cut off.
//
// Address: /hall/?hall=<id>[&device_token=<token>]. Public: the page reads topic hall:<id>
// only, without a token. Run as the hall's registered hall display (综合屏), it is given the
// device's token once (kept in localStorage "hallhub.hall_display.device_token", removed from
// the address bar) and says hello as that device (kind hall_display): the hall's managers see
// it online or offline on the device page and in presence:<id>. A token the hub refuses
// (revoked, another kind's) leaves the screen public, with a small notice for the IT admin.
//
// Voice: a ticket_called event is announced when it is fresh, i.e. less than ANNOUNCE_MAX_AGE
// seconds old by the hub's clock. Live events always are; the events a resume replays after a
// short outage are too, so nobody misses a call made during a reconnect; a morning's calls
// replayed after a long one are not. A snapshot is state, never announced.

import { Announcer } from "../lib/announcer.js";
import { followDevice, readDeviceToken } from "../lib/device-token.js";
import { displayClient, flashCall, followHall } from "../lib/hall-page.js";
import {
  applyQueueEvent,
  groupEstimateSeconds,
  isQueueEvent,
  minutesText,
  queueFromSnapshot,
  unixSeconds,
  WINDOW_STATUS_TEXT,
} from "../lib/queue-state.js";
import { h, showHallName, stopNotice } from "../lib/ui.js";

export const ANNOUNCE_MAX_AGE = 60;
export const DEVICE_TOKEN_KEY = "hallhub.hall_display.device_token";
const PAGE_TITLE = "叫号综合屏";
// Recent calls listed under the latest one.
const RECENT_SHOWN = 8;
const WEEKDAYS = "日一二三四五六";
// Beyond these the waiting table and the windows strip use smaller type to fit the screen.
const DENSE_GROUPS = 7;
const DENSE_WINDOWS = 12;

const $ = (id) => document.getElementById(id);

class HallDisplay {
  constructor(client, announcer) {
    this.client = client;
    this.announcer = announcer;
    this.queue = queueFromSnapshot(null);
    this.timezone = null;
    this.notices = new Map(); // id -> {id, text, created_at, expires_at}
    this.tickerText = null;
  }

  onSnapshot(data) {
    if (data?.name) showHallName(PAGE_TITLE, data.name);
    this.timezone = data?.timezone ?? null;
    this.queue = queueFromSnapshot(data?.queue);
    this.notices.clear();
    for (const notice of data?.notices ?? []) this.notices.set(notice.id, notice);
    this.render();
    this.renderNotices();
  }

  onEvent(event) {
    if (event.name === "notice_posted") {
      this.notices.set(event.data.id, event.data);
      this.renderNotices();
      return;
    }
    if (!isQueueEvent(event.name)) return;
    this.queue = applyQueueEvent(this.queue, event);
    this.render();
    const call = event.data?.call;
    if (event.name === "ticket_called" && call) {
      flashCall($("latest"));
      if (this.client.serverNow() - event.ts < ANNOUNCE_MAX_AGE) this.announce(call);
    }
  }

  announce(call) {
    try {
      this.announcer.announce({
        ticketNo: call.number,
        windowNumber: call.window_number,
        kind: call.recall ? "recall" : "call", // a held ticket's return is a call
      });
    } catch (error) {
      console.warn("hall: call not announced", call, error);
    }
  }

  render() {
    const [latest, ...rest] = this.queue.calls;
    $("latest").toggleAttribute("data-empty", !latest);
    $("latest-number").textContent = latest ? latest.number : "—";
    $("latest-window").textContent = latest ? latest.window_number : "–";
    $("latest-text").textContent = latest
      ? `请 ${latest.number} 号${latest.recall ? "再次" : ""}到 ${latest.window_number} 号窗口办理`
      : "请留意叫号屏幕与语音提示";
    $("recent").replaceChildren(...rest.slice(0, RECENT_SHOWN).map((call) => callItem(call)));
    $("groups").replaceChildren(...this.queue.groups.map((group) => groupRow(group)));
    $("groups").parentElement.classList.toggle("dense", this.queue.groups.length > DENSE_GROUPS);
    $("windows").replaceChildren(...this.queue.windows.map((win) => windowTile(win)));
    $("windows").classList.toggle("dense", this.queue.windows.length > DENSE_WINDOWS);
  }

  /** Current notices only: an expired one leaves the ticker (checked every second). */
  renderNotices() {
    const now = this.client.serverNow();
    for (const [id, notice] of this.notices) {
      const expires = unixSeconds(notice.expires_at);
      if (expires !== null && expires <= now) this.notices.delete(id);
    }
    const texts = [...this.notices.values()]
      .sort((a, b) => (unixSeconds(b.created_at) ?? 0) - (unixSeconds(a.created_at) ?? 0))
      .map((notice) => notice.text.replace(/\s+/g, " ").trim());
    const text = texts.join("　◆　");
    if (text === this.tickerText) return;
    this.tickerText = text;
    $("notices").hidden = texts.length === 0;
    const ticker = $("ticker-text");
    ticker.textContent = text;
    ticker.dataset.count = String(texts.length);
    // About 6 characters a second, whatever the length; restarted for a new text, which
    // starts at the left edge (readable at once) rather than off screen on the right.
    const seconds = Math.max(12, Math.round(text.length / 6) + 8);
    ticker.classList.remove("scrolling");
    ticker.style.animationDuration = `${seconds}s`;
    const box = ticker.parentElement.clientWidth;
    const width = ticker.offsetWidth;
    ticker.style.animationDelay = `${-(seconds * box) / (box + width || 1)}s`;
    ticker.classList.add("scrolling");
  }

  /** While an announcement plays, its ticket number in the corner of the latest call. */
  showSpeaking(text, entry) {
    $("speaking").hidden = !text;
    $("speaking").textContent = text ? `正在播报 ${entry?.ticketNo ?? ""}`.trim() : "";
  }
}

function callItem(call) {
  return h(
    "li",
    { class: call.recall ? "recall" : null, dataset: { number: call.number, window: call.window_number } },
    h("span", { class: "ticket-no num" }, call.number),
    h("span", { class: "arrow", "aria-hidden": "true" }, "→"),
    h("span", { class: "window-no" }, h("span", { class: "num" }, call.window_number), "号窗口"),
    call.recall ? h("span", { class: "tag" }, "重呼") : null,
  );
}

function groupRow(group) {
  let estimate;
  if (!group.active) estimate = "暂停取号";
  else if (group.waiting > 0 && group.open_windows === 0) estimate = "暂无窗口";
  else estimate = minutesText(groupEstimateSeconds(group));
  return h(
    "tr",
    { class: group.active ? null : "inactive", dataset: { groupId: group.group_id, prefix: group.prefix } },
    h("td", { class: "prefix-cell" }, h("span", { class: "prefix" }, group.prefix)),
    h("td", { class: "group" }, group.name),
    h("td", { class: "count num" }, group.waiting, h("span", { class: "unit" }, "人")),
    h("td", { class: "estimate" }, estimate),
  );
}

function windowTile(win) {
  return h(
    "li",
    { class: `window-tile ${win.status}`, dataset: { windowId: win.window_id, status: win.status } },
    h("span", { class: "number" }, h("span", { class: "num" }, win.number), "号"),
    h("span", { class: "status" }, WINDOW_STATUS_TEXT[win.status] ?? win.status),
    h("span", { class: "current num" }, win.status === "closed" ? "" : (win.current ?? "—")),
  );
}

function main() {
  const params = new URLSearchParams(location.search);
  const hall = params.get("hall");
  const token = readDeviceToken(DEVICE_TOKEN_KEY, params); // kept, gone from the address bar
  if (!hall || !/^\d+$/.test(hall)) {
    stopNotice("缺少大厅编号：请在地址后加上 ?hall=大厅编号，或从首页进入。");
    return;
  }
  showHallName(PAGE_TITLE, `大厅 ${hall}`); // until the snapshot names it

  // As the hall's display device when it has a token (its presence); public without one.
  const client = displayClient({ token, kind: "hall_display", client: "hall-display" });
  followDevice(client); // <body data-device-id> once welcomed as the device
  let display = null;
  const announcer = new Announcer({ onSpeaking: (text, entry) => display?.showSpeaking(text, entry) });
  display = new HallDisplay(client, announcer);
  // Past the hall's midnight, yesterday's calls and counts go by a fresh snapshot (followHall).
  followHall(client, hall, display, {
    everySecond: (now) => {
      const d = new Date(now * 1000);
      $("today").textContent = `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日 星期${WEEKDAYS[d.getDay()]}`;
      display.renderNotices();
    },
  });
  window.hallhub = { client, display, announcer }; // for the browser console and the tests
}

main();
