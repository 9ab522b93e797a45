// Staff console (窗口工作台, Q2): a window's staff member signs in, chooses the window, and
// calls, recalls, skips, holds, transfers and finishes tickets, by button or keyboard.
//
// Address: /staff/[?hall=<id>][&window=<window id>]. The session token is kept in
// localStorage "hallhub.token" (ui.js readToken); without one the page asks for the staff
// number and password. The hall comes from ?hall= or the staff member's hall grant.
//
// The page follows hall:<id> (hub-client.js): the snapshot lists the windows to choose from
// and the group names; an event that touches this window or its groups reloads the window's
// console (GET …/console: its tickets and its queue in calling order).
//
// ID card (D2, O3): when the window has an ID card reader, 读身份证 (or I) sends the websocket
// command read_card; the card comes back as a VOLATILE card_read on staff:<own staff id> and
// is shown masked only (as the hub masks: name 张*, number 110***********0021), with whether
// it is the document the current ticket was taken with. The full card is never kept.

import { HubClient } from "../lib/hub-client.js";
import { WINDOW_STATUS_TEXT, applyQueueEvent, queueFromSnapshot, unixSeconds } from "../lib/queue-state.js";
import {
  PRIORITY_TEXT, STAFF_NO_KEY, startStaffPage, store, storeToken, stored,
} from "../lib/staff-api.js";
import { CARD_FAILED_TEXT, CardRequest, maskName, maskNumber, validityText } from "../lib/devices.js";
import { DOCUMENT_TEXT, clockText, connectionBanner, h, relativeTime } from "../lib/ui.js";

const WINDOW_KEY = "hallhub.staff.window"; // "<hall id>:<window id>" of the last sign-in
const ERROR_SECONDS = 8;
const REFRESH_DELAY_MS = 120; // events come in bursts (call = called + counts): one reload

// Keyboard shortcuts (shown on the buttons). Letters in either case.
const SHORTCUTS = Object.freeze({
  F1: "call",
  " ": "call",
  r: "recall",
  s: "skip",
  h: "hold",
  t: "transfer",
  f: "finish",
  Enter: "finish",
  p: "pause",
  i: "read-card",
});

const SEX_TEXT = { 1: "男", 2: "女", male: "男", female: "女" };

const $ = (id) => document.getElementById(id);

function showError(message) {
  const bar = $("error");
  bar.textContent = message;
  bar.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => {
    bar.hidden = true;
  }, ERROR_SECONDS * 1000);
}

function showNotice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

class StaffConsole {
  constructor(api, me, hallId, preferredWindow) {
    this.api = api;
    this.me = me;
    this.hallId = hallId;
    this.staffNo = stored(STAFF_NO_KEY);
    this.preferredWindow = preferredWindow;
    this.windowId = null;
    this.queue = queueFromSnapshot(null);
    this.console = null; // {state: WindowResult, queue: [QueuedTicket]}
    this.busy = false;
    this.refreshTimer = null;
    this.client = null;
    this.card = null; // CardRequest
    this.reader = undefined; // the window's id_reader: an id, null (none) or undefined (unknown)
    this.cardTicket = null; // the ticket that was current when the card was read
  }

  start() {
    this.client = new HubClient({ kind: "console", token: this.api.token, client: "staff-console" });
    connectionBanner(this.client);
    this.client.subscribe(`hall:${this.hallId}`, {
      onSnapshot: (data) => this.onSnapshot(data),
      onEvent: (event) => this.onEvent(event),
    });
    // A card read at this window's reader is for this staff member only (VOLATILE events).
    this.card = new CardRequest(this.client, {
      onCard: (card) => this.showCard(card),
      onFailed: (reason) => {
        const text = reason === "no_reader" ? "本窗口未配置身份证读卡器" : CARD_FAILED_TEXT[reason];
        this.cardStatus(text ?? CARD_FAILED_TEXT.read_failed, true);
      },
      onState: (state) => {
        $("btn-read-card").disabled = state === "reading";
      },
    });
    if (this.me.staff_id) {
      this.client.subscribe(`staff:${this.me.staff_id}`, { onEvent: (event) => this.card.onEvent(event) });
    }
    this.client.start();
    $("btn-read-card").addEventListener("click", () => {
      $("btn-read-card").blur();
      this.readCard();
    });
    document.addEventListener("keydown", (event) => this.onKey(event));
    for (const button of document.querySelectorAll("#actions [data-action]")) {
      button.addEventListener("click", () => {
        button.blur(); // Space and Enter are shortcuts: they must not click a focused button
        this.perform(button.dataset.action);
      });
    }
    this.view("choose");
  }

  view(name) {
    document.body.dataset.view = name;
  }

  path(action = "") {
    return `/api/halls/${this.hallId}/windows/${this.windowId}${action ? `/${action}` : ""}`;
  }

  groupName(groupId) {
    const group = this.queue.groups.find((g) => g.group_id === groupId);
    return group ? `${group.prefix} ${group.name}` : `分组 ${groupId}`;
  }

  myWindowView() {
    return this.queue.windows.find((w) => w.window_id === this.windowId) ?? null;
  }

  // --- realtime ----------------------------------------------------------------------

  onSnapshot(data) {
    if (data?.name) {
      $("hall-name").textContent = data.name;
      this.hallName = data.name;
    }
    this.queue = queueFromSnapshot(data?.queue);
    if (this.windowId === null) {
      const mine = this.queue.windows.find((w) => w.status !== "closed" && this.staffNo && w.staff_no === this.staffNo);
      const wanted = mine?.window_id ?? this.preferredWindow;
      this.preferredWindow = null;
      if (wanted && this.queue.windows.some((w) => w.window_id === wanted)) {
        this.signInAt(wanted);
        return;
      }
      this.renderChooser();
    } else {
      this.scheduleRefresh();
    }
  }

  onEvent(event) {
    this.queue = applyQueueEvent(this.queue, event);
    if (this.windowId === null) {
      this.renderChooser();
    } else if (this.touches(event)) {
      this.scheduleRefresh();
    }
  }

  /** Whether an event of the hall may change this window's console. */
  touches(event) {
    if (event.name === "queue_configured" || event.name === "ticket_transferred") return true;
    const data = event.data ?? {};
    if (data.window?.window_id === this.windowId) return true;
    const mine = this.myWindowView();
    return Boolean(mine && data.group_id !== null && mine.group_ids.includes(data.group_id));
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_DELAY_MS);
  }

  // --- choosing and signing in at a window --------------------------------------------

  renderChooser() {
    this.view("choose");
    const list = $("window-list");
    const windows = this.queue.windows;
    if (!windows.length) {
      list.replaceChildren(h("p", { class: "empty" }, "本大厅尚无窗口"));
      return;
    }
    list.replaceChildren(
      ...windows.map((w) => {
        const taken = w.status !== "closed" && w.staff_no !== this.staffNo;
        const button = h(
          "button",
          { type: "button", class: `window-choice ${w.status}`, disabled: taken, dataset: { windowId: w.window_id } },
          h("span", { class: "choice-number num" }, `${w.number}号`),
          h("span", { class: "choice-name" }, w.name || `${w.number}号窗口`),
          h("span", { class: "choice-dept" }, w.department ?? ""),
          h("span", { class: "choice-groups" }, w.group_ids.map((id) => this.groupName(id)).join("、") || "未配置业务"),
          h(
            "span",
            { class: "choice-status" },
            w.status === "closed" ? "空闲" : `${WINDOW_STATUS_TEXT[w.status]} · ${w.staff_name ?? ""}`,
          ),
        );
        button.addEventListener("click", () => this.signInAt(w.window_id));
        return button;
      }),
    );
  }

  async signInAt(windowId) {
    try {
      const result = await this.api.post(`/api/halls/${this.hallId}/windows/${windowId}/sign-in`);
      this.windowId = windowId;
      store(WINDOW_KEY, `${this.hallId}:${windowId}`);
      this.staffNo = result.window.staff_no;
      store(STAFF_NO_KEY, this.staffNo);
      this.console = { state: result, queue: this.console?.queue ?? [] };
      this.view("console");
      this.render();
      this.findReader();
      await this.refresh();
    } catch (error) {
      this.fail(error);
      this.windowId = null;
      this.renderChooser();
    }
  }

  // --- the console ---------------------------------------------------------------------

  async refresh() {
    if (this.windowId === null) return;
    try {
      this.console = await this.api.get(this.path("console"));
      this.render();
    } catch (error) {
      this.fail(error);
    }
  }

  current() {
    return this.console?.state.serving.find((t) => t.status === "called") ?? null;
  }

  render() {
    const state = this.console?.state;
    if (!state) return;
    const w = state.window;
    if (w.status === "closed" || (this.staffNo && w.staff_no !== this.staffNo)) {
      // Signed out here (by this page or a manager): back to choosing.
      this.windowId = null;
      store(WINDOW_KEY, null);
      showNotice(`已签退 ${w.number}号窗口`);
      this.renderChooser();
      return;
    }
    showNotice("");
    this.view("console");
    document.title = `窗口工作台 · ${w.number}号窗口`;
    $("window-title").textContent = `${w.number}号窗口 ${w.name}`;
    $("window-status").textContent = WINDOW_STATUS_TEXT[w.status] ?? w.status;
    $("window-status").dataset.status = w.status;
    $("window-groups").textContent = w.group_ids.map((id) => this.groupName(id)).join("、");
    this.renderCurrent(this.current());
    this.renderHeld(state.serving.filter((t) => t.status === "held"));
    this.renderQueue(this.console.queue ?? []);
    this.renderButtons(w);
  }

  renderCurrent(ticket) {
    if ((ticket?.ticket_id ?? null) !== this.cardTicket) this.clearCard();
    $("current").dataset.state = ticket ? "serving" : "idle";
    $("current-number").textContent = ticket ? ticket.number : "—";
    $("current-group").textContent = ticket ? this.groupName(ticket.group_id) : "暂无办理中的号票，请叫号";
    $("current-facts").hidden = !ticket;
    if (!ticket) return;
    $("current-calls").textContent = `${ticket.call_count} 次`;
    $("current-priority").textContent = PRIORITY_TEXT[ticket.priority] ?? ticket.priority;
    $("current-priority").dataset.priority = ticket.priority;
    // Masked only (hub/domain/identity.py): the console never receives full numbers.
    $("current-name").textContent = ticket.name_masked ?? "未登记";
    $("current-id").textContent = ticket.id_masked
      ? `${DOCUMENT_TEXT[ticket.id_kind] ?? ticket.id_kind ?? ""} ${ticket.id_masked}`
      : "未刷证";
  }

  renderHeld(held) {
    $("held-count").textContent = held.length;
    $("held-empty").hidden = held.length > 0;
    $("held-list").replaceChildren(
      ...held.map((t) => {
        const back = h("button", { type: "button", class: "small", dataset: { ticketId: t.ticket_id } }, "回呼");
        back.addEventListener("click", () => this.act("return", { ticket_id: t.ticket_id }));
        return h(
          "li",
          { dataset: { number: t.number } },
          h("span", { class: "ticket-number num" }, t.number),
          h("span", { class: "ticket-group" }, this.groupName(t.group_id)),
          back,
        );
      }),
    );
  }

  renderQueue(queue) {
    $("queue-count").textContent = queue.length;
    $("queue-empty").hidden = queue.length > 0;
    $("queue-list").replaceChildren(
      ...queue.map((t) =>
        h(
          "li",
          { dataset: { number: t.number, queuedAt: unixSeconds(t.queued_at) } },
          h("span", { class: "ticket-number num" }, t.number),
          h("span", { class: "ticket-group" }, this.groupName(t.group_id)),
          t.priority !== "normal" ? h("span", { class: `badge-priority ${t.priority}` }, PRIORITY_TEXT[t.priority]) : null,
          t.transferred_here ? h("span", { class: "badge-transfer" }, "转入") : null,
          h("span", { class: "waited" }),
        ),
      ),
    );
    this.refreshTimes();
  }

  refreshTimes() {
    const now = this.client?.serverNow() ?? Date.now() / 1000;
    for (const li of $("queue-list").children) {
      const queuedAt = Number(li.dataset.queuedAt);
      li.querySelector(".waited").textContent = Number.isFinite(queuedAt) ? relativeTime(now - queuedAt) : "";
    }
  }

  renderButtons(w) {
    const current = this.current();
    const open = w.status === "open";
    const enable = (id, on) => {
      $(id).disabled = !on || this.busy;
    };
    enable("btn-call", open && !current);
    for (const id of ["btn-recall", "btn-skip", "btn-hold", "btn-transfer", "btn-finish"]) enable(id, Boolean(current));
    enable("btn-pause", w.status !== "closed");
    enable("btn-sign-out", true);
    $("btn-pause").firstChild.textContent = w.status === "paused" ? "继续 " : "暂停 ";
    $("btn-pause").dataset.action = "pause";
  }

  // --- actions -------------------------------------------------------------------------

  onKey(event) {
    if (document.body.dataset.view !== "console" || this.windowId === null) return;
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    if ($("transfer-dialog").open) return;
    const target = event.target;
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return;
    // A button reached with Tab keeps its own Enter and Space.
    if ((event.key === "Enter" || event.key === " ") && target instanceof HTMLButtonElement) return;
    const action = SHORTCUTS[event.key] ?? SHORTCUTS[event.key.toLowerCase()];
    if (!action) return;
    event.preventDefault(); // F1 opens help, Space scrolls
    if (event.repeat) return;
    this.perform(action);
  }

  perform(action) {
    const status = this.console?.state.window.status;
    if (action === "read-card") {
      if (!$("card-panel").hidden) this.readCard();
      return;
    }
    if (action === "transfer") {
      if (this.current()) this.openTransfer();
      else showError("当前没有正在办理的号票");
      return;
    }
    if (action === "pause") {
      this.act(status === "paused" ? "resume" : "pause");
      return;
    }
    this.act(action);
  }

  async act(action, body = {}) {
    if (this.busy || this.windowId === null) return;
    this.busy = true;
    try {
      const result = await this.api.post(this.path(action), body);
      this.console = { state: result, queue: this.console?.queue ?? [] };
      if (action === "call" && !result.called) showError("暂无排队的号票");
    } catch (error) {
      this.fail(error);
    } finally {
      this.busy = false;
    }
    this.render(); // after a sign-out this goes back to choosing a window
    await this.refresh();
  }

  openTransfer() {
    const dialog = $("transfer-dialog");
    $("transfer-number").textContent = this.current()?.number ?? "";
    const choice = (label, body, data) => {
      const button = h("button", { type: "button", class: "choice", dataset: data }, label);
      button.addEventListener("click", () => {
        dialog.close();
        this.act("transfer", body);
      });
      return button;
    };
    const windows = this.queue.windows.filter((w) => w.window_id !== this.windowId && w.status !== "closed");
    $("transfer-windows").replaceChildren(
      ...(windows.length
        ? windows.map((w) =>
            choice(`${w.number}号 ${w.name}（${w.staff_name ?? ""}）`, { window_id: w.window_id }, { windowId: w.window_id }),
          )
        : [h("p", { class: "empty" }, "没有其他开放的窗口")]),
    );
    const groups = this.queue.groups.filter((g) => g.active);
    $("transfer-groups").replaceChildren(
      ...groups.map((g) => choice(`${g.prefix} ${g.name}（等候 ${g.waiting}）`, { group_id: g.group_id }, { groupId: g.group_id })),
    );
    dialog.showModal();
  }

  // --- ID card --------------------------------------------------------------------------

  /** Whether this window has an ID card reader: from the hall's device list when this staff
   * member may read it; otherwise unknown, and the hub answers the read (no_reader). */
  async findReader() {
    const windowId = this.windowId;
    this.reader = undefined;
    try {
      const devices = await this.api.get(`/api/halls/${this.hallId}/devices`);
      const reader = devices.find((d) => d.kind === "id_reader" && d.window_id === windowId && !d.revoked_at);
      this.reader = reader ? reader.id : null;
    } catch {
      this.reader = undefined; // not allowed to list devices, or an older hub
    }
    if (windowId === this.windowId) $("card-panel").hidden = this.reader === null;
  }

  async readCard() {
    if (!this.card || this.card.reading || this.windowId === null) return;
    this.clearCard();
    this.cardStatus("正在读卡，请将身份证放在读卡器上…");
    // Without a reader id the hub asks the reader at the window this staff member works.
    const args = this.reader ? { reader_id: this.reader } : {};
    await this.card.read(args);
  }

  /** The card, masked; compared with the document of the current ticket. */
  showCard(card) {
    const ticket = this.current();
    this.cardTicket = ticket?.ticket_id ?? null;
    const masked = maskNumber(card.id_number);
    $("card-name").textContent = maskName(card.name) || "—";
    $("card-sex").textContent = SEX_TEXT[card.sex] ?? card.sex ?? "—";
    $("card-nation").textContent = card.nation ?? "—";
    $("card-id").textContent = masked;
    $("card-valid").textContent = validityText(card);
    const expired = card.valid_to && card.valid_to.replaceAll(".", "-") < new Date().toISOString().slice(0, 10);
    let match;
    let text;
    if (expired) [match, text] = ["expired", "证件已过有效期"];
    else if (!ticket) [match, text] = ["none", "当前没有办理中的号票"];
    else if (!ticket.id_masked) [match, text] = ["none", "号票未登记证件"];
    else if (ticket.id_masked === masked) [match, text] = ["yes", "与号票登记的证件一致"];
    else [match, text] = ["no", "与号票登记的证件不一致"];
    $("card-match").textContent = text;
    $("card-match").dataset.match = match;
    $("card-facts").hidden = false;
    this.cardStatus("已读卡");
  }

  clearCard() {
    this.cardTicket = this.current()?.ticket_id ?? null;
    $("card-facts").hidden = true;
    for (const id of ["card-name", "card-sex", "card-nation", "card-id", "card-valid", "card-match"]) {
      $(id).textContent = "";
    }
    this.cardStatus(null);
  }

  cardStatus(text, failed = false) {
    $("card-status").hidden = !text;
    $("card-status").textContent = text ?? "";
    $("card-status").classList.toggle("failed", failed);
  }

  fail(error) {
    if (error?.status === 401) {
      storeToken(null);
      location.reload();
      return;
    }
    showError(error?.message ?? String(error));
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const page = await startStaffPage(params, {
    title: "窗口工作人员登录", roles: ["window_staff", "hall_manager"], showError,
  });
  if (!page) return;
  const { api, me, hall } = page;
  const last = stored(WINDOW_KEY)?.split(":");
  const fromUrl = params.get("window");
  const preferred = fromUrl && /^\d+$/.test(fromUrl) ? Number(fromUrl) : last?.[0] === hall ? Number(last[1]) : null;
  const staffConsole = new StaffConsole(api, me, Number(hall), preferred);
  staffConsole.start();
  const everySecond = () => {
    $("clock").textContent = clockText(staffConsole.client.serverNow());
    staffConsole.refreshTimes();
  };
  everySecond();
  setInterval(everySecond, 1000);
  window.hallhub = { console: staffConsole }; // for the browser console
}

main();
