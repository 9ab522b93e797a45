// Window display (窗口显示屏, Q6): above one window, its number, name and agency, the service
// groups it serves, who works it (name and staff number: staff work under their name,
// 亮证上岗), the ticket being served, how many wait for it, and its honours (红旗窗口,
// 先进个人). Supervision cards are not public and never appear here.
//
// Address: /window/?hall=<id>&window=<window_id> or /window/?hall=<id>&number=<n>.
// Public: the page follows topic hall:<id> and shows the one window.

import { flashCall, followHall } from "../lib/hall-page.js";
import { HubClient } from "../lib/hub-client.js";
import {
  applyQueueEvent,
  isQueueEvent,
  queueFromSnapshot,
  windowQueueLength,
} from "../lib/queue-state.js";
import { h, stopNotice } from "../lib/ui.js";

const $ = (id) => document.getElementById(id);

class WindowDisplay {
  /** select: {windowId} or {number}; the window is found in each snapshot. */
  constructor(select) {
    this.select = select;
    this.queue = queueFromSnapshot(null);
    this.timezone = null;
    this.window = null;
  }

  find() {
    const { windowId, number } = this.select;
    const match = (w) => (windowId !== null ? w.window_id === windowId : w.number === number);
    return this.queue.windows.find(match) ?? null;
  }

  onSnapshot(data) {
    this.timezone = data?.timezone ?? null;
    this.queue = queueFromSnapshot(data?.queue);
    this.render();
  }

  onEvent(event) {
    if (!isQueueEvent(event.name)) return;
    this.queue = applyQueueEvent(this.queue, event);
    this.render();
    const call = event.data?.call;
    if (event.name === "ticket_called" && call && call.window_id === this.window?.window_id) flashCall($("current"));
  }

  render() {
    const win = this.find();
    this.window = win;
    const missing = $("notice");
    if (!win) {
      const { windowId, number } = this.select;
      missing.textContent = windowId !== null ? `本大厅没有编号为 ${windowId} 的窗口` : `本大厅没有 ${number} 号窗口`;
      missing.hidden = false;
      return;
    }
    missing.hidden = true;
    const screen = $("screen");
    screen.dataset.status = win.status;
    screen.dataset.windowId = String(win.window_id);
    document.title = `${win.number}号窗口`;
    $("number").textContent = win.number;
    $("window-name").textContent = win.name;
    $("department").textContent = win.department ?? "";
    $("red-flag").hidden = !win.red_flag;

    const signedIn = win.status !== "closed" && Boolean(win.staff_name);
    $("staff").dataset.signedIn = String(signedIn);
    $("staff-name").textContent = signedIn ? win.staff_name : "—";
    $("staff-no").textContent = signedIn ? (win.staff_no ?? "—") : "—";
    $("star-staff").hidden = !(signedIn && win.star_staff);

    let label;
    let current = "";
    if (win.status === "closed") label = "本窗口暂停服务";
    else if (win.status === "paused") label = "暂停办理";
    else if (win.current) {
      label = "正在办理";
      current = win.current;
    } else label = "等候叫号";
    $("state-label").textContent = label;
    $("current").textContent = current;
    $("current").hidden = !current;
    $("queue-length").textContent = windowQueueLength(this.queue, win);

    const groups = new Map(this.queue.groups.map((g) => [g.group_id, g]));
    $("services").replaceChildren(
      ...win.group_ids
        .map((id) => groups.get(id))
        .filter(Boolean)
        .map((g) =>
          h("li", { dataset: { groupId: g.group_id } }, h("span", { class: "prefix" }, g.prefix), g.name),
        ),
    );
  }
}

function main() {
  const params = new URLSearchParams(location.search);
  const hall = params.get("hall");
  const windowParam = params.get("window");
  const numberParam = params.get("number");
  if (!hall || !/^\d+$/.test(hall)) {
    stopNotice("缺少大厅编号：请在地址后加上 ?hall=大厅编号&number=窗口号。");
    return;
  }
  const valid = (value) => value !== null && /^\d+$/.test(value);
  if (!valid(windowParam) && !valid(numberParam)) {
    stopNotice("缺少窗口：请在地址后加上 &number=窗口号（或 &window=窗口编号）。");
    return;
  }
  const display = new WindowDisplay(
    valid(windowParam)
      ? { windowId: Number(windowParam), number: null }
      : { windowId: null, number: Number(numberParam) },
  );
  const client = new HubClient({ kind: "window_display", client: "window-display" });
  followHall(client, hall, display);
  window.hallhub = { client, display };
}

main();
