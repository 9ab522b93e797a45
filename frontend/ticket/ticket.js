// The citizen's page of one ticket (Q8), reached by the QR code on the paper ticket or the
// kiosk's screen: number, service, how many are ahead, the estimated wait, "快到您了" when
// three or fewer are ahead, and a banner "请到 N 号窗口办理" when it is called.
//
// Address: /ticket/?t=<public token>. Public; no personal data is shown (the hub sends none).
//
// The ticket's facts come from GET /api/tickets/{token}; the page follows topic
// hall:<hall_id> and fetches the ticket again after every queue event of its group, its
// window or its number, at most once per REFRESH_MS, and after every snapshot and reconnect,
// so what it shows is never older than the hub's last event it heard of.

import { HubClient } from "../lib/hub-client.js";
import {
  isQueueEvent,
  minutes,
  QUEUE_CONFIGURED,
  TICKET_STATUS_TEXT,
  unixSeconds,
} from "../lib/queue-state.js";
import { connectionBanner, shortTime, stopNotice } from "../lib/ui.js";

export const REFRESH_MS = 300;
// Besides events, a slow look now and then: a ticket's service day can end (expired) and the
// hub announces no event for that.
export const POLL_MS = 60_000;
export const NEAR_AHEAD = 3;
const FINAL = new Set(["done", "no_show", "expired"]);
const VIBRATE = [300, 150, 300];

const $ = (id) => document.getElementById(id);

function vibrate() {
  try {
    navigator.vibrate?.(VIBRATE);
  } catch {
    /* not supported, or refused without a tap */
  }
}

class TicketPage {
  constructor(token) {
    this.token = token;
    this.ticket = null;
    this.client = null;
    this.fetches = 0; // requests made (the tests read it)
    this._issued = 0;
    this._applied = 0;
    this._timer = null;
    this._lastFetch = 0;
    this._nearShown = false;
    this._calledShown = null; // called_at (unix seconds) of the call the banner vibrated for
  }

  /** Fetch soon: at most once per REFRESH_MS, the last request of a burst always made. */
  schedule(delayMs = 0) {
    if (this._timer !== null) return;
    const wait = Math.max(delayMs, this._lastFetch + REFRESH_MS - Date.now(), 0);
    this._timer = setTimeout(() => {
      this._timer = null;
      this.refresh();
    }, wait);
  }

  async refresh() {
    this._lastFetch = Date.now();
    this.fetches += 1;
    const issued = ++this._issued;
    let response;
    try {
      response = await fetch(`/api/tickets/${encodeURIComponent(this.token)}`, { cache: "no-store" });
    } catch (error) {
      console.warn("ticket: fetch failed", error);
      this.schedule(3000);
      return;
    }
    if (response.status === 429) {
      const retry = Number.parseInt(response.headers.get("Retry-After") ?? "5", 10);
      this.schedule((Number.isFinite(retry) ? retry : 5) * 1000);
      return;
    }
    if (response.status === 404) {
      this.notFound();
      return;
    }
    if (!response.ok) {
      console.warn(`ticket: HTTP ${response.status}`);
      this.schedule(3000);
      return;
    }
    const ticket = await response.json();
    // Answers can overtake each other: never replace a newer answer by an older one.
    if (issued < this._applied) return;
    this._applied = issued;
    this.show(ticket);
  }

  show(ticket) {
    const first = this.ticket === null;
    this.ticket = ticket;
    $("notice").hidden = true;
    $("card").hidden = false;
    $("card").dataset.status = ticket.status;
    $("hall-name").textContent = ticket.hall_name;
    document.title = `${ticket.number} · 我的排队`;
    $("group-name").textContent = ticket.group_name;
    $("number").textContent = ticket.number;
    $("status").textContent = TICKET_STATUS_TEXT[ticket.status] ?? ticket.status;
    $("status").dataset.status = ticket.status;

    const waiting = ticket.status === "waiting";
    $("ahead").hidden = !waiting;
    $("estimate").hidden = !waiting;
    if (waiting) {
      $("ahead").textContent = ticket.ahead > 0 ? `前面还有 ${ticket.ahead} 人` : "下一位就是您";
      const n = minutes(ticket.estimate_seconds);
      $("estimate").textContent = n > 0 ? `预计等待约 ${n} 分钟` : "即将叫号，请留意";
    }
    $("explain").textContent = explanation(ticket);
    $("issued-at").textContent = shortTime(unixSeconds(ticket.issued_at));
    const calledAt = unixSeconds(ticket.called_at);
    $("called-at").textContent = calledAt ? shortTime(calledAt) : "—";
    $("called-at").hidden = $("called-at-label").hidden = !calledAt;

    const near = waiting && ticket.ahead <= NEAR_AHEAD;
    $("near").hidden = !near;
    if (near && !this._nearShown && !first) vibrate();
    this._nearShown = near;

    if (ticket.status === "called" && ticket.window_number !== null) {
      this.showCalled(ticket.window_number, ticket.called_at);
    } else {
      $("called").hidden = true;
    }

    if (FINAL.has(ticket.status)) {
      // Nothing more can happen to this ticket: leave (or never join) the hall's feed.
      this.client?.stop();
      document.body.dataset.link = "stopped";
      $("hint").textContent = "本号票已结束，页面不再更新。";
    } else if (this.client === null) {
      this.follow();
    }
  }

  /** The banner; it vibrates once per call (a recall is a new call). */
  showCalled(windowNumber, calledAt) {
    $("called-window").textContent = windowNumber;
    $("called").hidden = false;
    $("near").hidden = true;
    // By time, not text: the event's and the fetched ticket's ISO strings may differ in form.
    const at = unixSeconds(calledAt);
    if (at === null || this._calledShown === null || Math.abs(at - this._calledShown) > 0.001) {
      this._calledShown = at;
      vibrate();
    }
  }

  notFound() {
    const element = $("notice");
    element.textContent = "未找到该号票：请核对二维码，或向大厅工作人员咨询。";
    element.hidden = false;
    $("card").hidden = true;
    $("called").hidden = true;
    $("near").hidden = true;
    this.client?.stop();
    document.body.dataset.link = "stopped";
  }

  /** Follow the ticket's hall once its hall is known. */
  follow() {
    const client = new HubClient({ kind: "ticket_page", client: "ticket-page" });
    this.client = client;
    connectionBanner(client);
    client.addEventListener("state", (event) => {
      if (event.detail.state === "live") this.schedule();
    });
    client.subscribe(`hall:${this.ticket.hall_id}`, {
      onSnapshot: () => this.schedule(),
      onEvent: (event) => this.onEvent(event),
    });
    client.start();
    window.hallhub.client = client;
  }

  onEvent(event) {
    const ticket = this.ticket;
    if (!ticket || !isQueueEvent(event.name)) return;
    const data = event.data ?? {};
    if (event.name === "ticket_called" && data.ticket === ticket.number && data.call) {
      // Shown at once; the fetch that follows confirms it.
      this.showCalled(data.call.window_number, data.call.called_at);
    }
    const win = data.window;
    const concerns =
      event.name === QUEUE_CONFIGURED ||
      data.ticket === ticket.number ||
      data.group_id === ticket.group_id ||
      (win && (win.group_ids.includes(ticket.group_id) || win.number === ticket.window_number));
    if (concerns) this.schedule();
  }
}

function explanation(ticket) {
  switch (ticket.status) {
    case "waiting":
      return ticket.priority === "green_channel" ? "绿色通道" : "";
    case "called":
      return "请带齐材料前往窗口；如未及时到达，可能被过号。";
    case "held":
      return ticket.window_number
        ? `您的号票在 ${ticket.window_number} 号窗口暂挂，请留意该窗口的呼叫。`
        : "您的号票已暂挂，请留意窗口的呼叫。";
    case "done":
      return "业务已办结，感谢您的耐心等待。";
    case "no_show":
      return "叫号时您未到窗口，本号票已失效；如需办理，请重新取号。";
    case "expired":
      return "号票仅在取号当日有效；如需办理，请重新取号。";
    default:
      return "";
  }
}

function main() {
  const params = new URLSearchParams(location.search);
  const token = params.get("t");
  if (!token || token.length > 64) {
    stopNotice("缺少号票信息：请扫描号票上的二维码打开本页。");
    return;
  }
  const page = new TicketPage(token);
  window.hallhub = { page, client: null };
  page.refresh();
  setInterval(() => {
    if (page.ticket && !FINAL.has(page.ticket.status)) page.schedule();
  }, POLL_MS);
}

main();
