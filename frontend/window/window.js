// Window display (窗口显示屏, Q6): above one window, its number, name and agency, the service
// groups it serves, who works it (name and staff number: staff work under their name,
// 亮证上岗), the ticket being served, how many wait for it, and its honours (红旗窗口,
// 先进个人). Supervision cards are not public and never appear here.
//
// Address: /window/?hall=<id>&window=<window_id> or /window/?hall=<id>&number=<n>, and
// optionally &device_token=<token>. Public: the page follows topic hall:<id> and shows the one
// window. Run as a registered window display (窗口显示屏), it is given the device's token once
// (kept in localStorage "hallhub.window_display.device_token", removed from the address bar)
// and says hello as that device (kind window_display): the hall's managers see it online or
// offline on the device page and in presence:<id>. A display bound to its window (the
// device:<id> snapshot's window_id) needs no window in the address: it shows the window it is
// bound to, and follows a new binding (device_changed); a window in the address comes first.
// A token the hub refuses (revoked, another kind's) leaves the screen public, with a small
// notice for the IT admin.

import { followDevice, readDeviceToken } from "../lib/device-token.js";
import { displayClient, flashCall, followHall } from "../lib/hall-page.js";
import {
  applyQueueEvent,
  isQueueEvent,
  queueFromSnapshot,
  windowQueueLength,
} from "../lib/queue-state.js";
import { h, stopNotice } from "../lib/ui.js";

export const DEVICE_TOKEN_KEY = "hallhub.window_display.device_token";
const MISSING_WINDOW = "缺少窗口：请在地址后加上 &number=窗口号（或 &window=窗口编号）。";

const $ = (id) => document.getElementById(id);

class WindowDisplay {
  /** select: {windowId} or {number}, the window found in each snapshot; null until the device's
   * binding is known (`unselected` says why on screen meanwhile). */
  constructor(select, unselected = MISSING_WINDOW) {
    this.select = select;
    this.unselected = unselected;
    this.queue = queueFromSnapshot(null);
    this.timezone = null;
    this.window = null;
  }

  /** The window this display is bound to (device:<id> snapshot or device_changed), unless
   * the address names one. */
  onBinding(device, fromAddress) {
    if (fromAddress || !device) return;
    const windowId = device.window_id ?? null;
    this.select = windowId === null ? null : { windowId, number: null };
    this.unselected =
      "本显示屏尚未绑定窗口：请在设备管理中将其绑定到窗口，或在地址后加上 &number=窗口号。";
    this.render();
  }

  find() {
    if (!this.select) return null;
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
      if (!this.select) missing.textContent = this.unselected;
      else {
        const { windowId, number } = this.select;
        missing.textContent = windowId !== null ? `本大厅没有编号为 ${windowId} 的窗口` : `本大厅没有 ${number} 号窗口`;
      }
      missing.hidden = false;
      delete $("screen").dataset.windowId;
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
  const token = readDeviceToken(DEVICE_TOKEN_KEY, params); // kept, gone from the address bar
  if (!hall || !/^\d+$/.test(hall)) {
    stopNotice("缺少大厅编号：请在地址后加上 ?hall=大厅编号&number=窗口号。");
    return;
  }
  const valid = (value) => value !== null && /^\d+$/.test(value);
  let select = null;
  if (valid(windowParam)) select = { windowId: Number(windowParam), number: null };
  else if (valid(numberParam)) select = { windowId: null, number: Number(numberParam) };
  else if (!token) {
    stopNotice(MISSING_WINDOW);
    return;
  }
  const fromAddress = select !== null;
  // Without a window in the address, a display device shows the window it is bound to.
  const display = new WindowDisplay(select, "正在读取本显示屏绑定的窗口…");
  // As the window's display device when it has a token (its presence); public without one.
  const client = displayClient({
    token,
    kind: "window_display",
    client: "window-display",
    onPublic: () => {
      if (fromAddress) return;
      display.unselected = MISSING_WINDOW; // public: nothing says which window
      display.render();
    },
  });
  followDevice(client, {
    onSnapshot: (data) => display.onBinding(data, fromAddress),
    onEvent: (event) => {
      if (event.name === "device_changed") display.onBinding(event.data, fromAddress);
    },
  });
  followHall(client, hall, display);
  window.hallhub = { client, display };
}

main();
