// Status page: which devices of one hall are online (topic presence:<hall>), under the hall's
// name (topic hall:<hall>, whose snapshot is {hall_id, name, timezone, windows}).
//
// Address: /status/?hall=<id>[&token=<staff session token>]; the token is otherwise read
// from localStorage "hallhub.token" (see ui.js readToken).

import { DEVICE_KIND_ORDER, DEVICE_KIND_TEXT } from "../lib/devices.js";
import { HubClient } from "../lib/hub-client.js";
import {
  clockText, connectionBanner, h, readToken, relativeTime, shortTime, showHallName, stopNotice,
} from "../lib/ui.js";

const KIND_NAMES = DEVICE_KIND_TEXT;
const KIND_ORDER = DEVICE_KIND_ORDER;
const PAGE_TITLE = "设备在线状态";
// Above this many devices the table switches to smaller type (style.css table.board.dense).
const DENSE_ROWS = 12;

const $ = (id) => document.getElementById(id);

/** Offline devices first (they need someone), then by kind, then by name. */
function compare(a, b) {
  if (a.online !== b.online) return a.online ? 1 : -1;
  const ka = KIND_ORDER.indexOf(a.peer_kind);
  const kb = KIND_ORDER.indexOf(b.peer_kind);
  if (ka !== kb) return (ka === -1 ? 99 : ka) - (kb === -1 ? 99 : kb);
  return (a.label || a.peer_id).localeCompare(b.label || b.peer_id, "zh-CN");
}

class PresenceBoard {
  constructor(client) {
    this.client = client;
    this.peers = new Map(); // peer_id -> peer
  }

  onSnapshot(data) {
    this.peers.clear();
    for (const peer of data.peers ?? []) this.peers.set(peer.peer_id, peer);
    this.render();
  }

  onEvent(event) {
    switch (event.name) {
      case "peer_online":
      case "peer_offline":
        this.peers.set(event.data.peer_id, event.data);
        this.render();
        break;
      case "peers_seen":
        for (const [peerId, lastSeen] of Object.entries(event.data.seen ?? {})) {
          const peer = this.peers.get(peerId);
          if (peer) peer.last_seen = lastSeen;
        }
        this.refreshTimes();
        break;
      default:
        break; // an event this page does not show
    }
  }

  render() {
    const peers = [...this.peers.values()].sort(compare);
    const online = peers.filter((p) => p.online).length;
    $("count-online").textContent = online;
    $("count-offline").textContent = peers.length - online;
    $("count-offline").parentElement.toggleAttribute("data-zero", peers.length === online);
    $("count-total").textContent = peers.length;
    $("empty").hidden = peers.length > 0;
    $("peers").replaceChildren(...peers.map((peer) => this.row(peer)));
    $("peers").parentElement.classList.toggle("dense", peers.length > DENSE_ROWS);
    this.refreshTimes();
  }

  row(peer) {
    const status = peer.online ? "online" : "offline";
    return h(
      "tr",
      { class: status, dataset: { peerId: peer.peer_id, status } },
      h("td", { class: "kind" }, KIND_NAMES[peer.peer_kind] ?? peer.peer_kind),
      h("td", { class: "label" }, peer.label || peer.peer_id),
      h("td", { class: "status" }, h("span", { class: `badge ${status}` }, peer.online ? "在线" : "离线")),
      h("td", { class: "seen num" }),
      h("td", { class: "changed num" }),
    );
  }

  /** Relative times move every second without rebuilding the rows. */
  refreshTimes() {
    const now = this.client.serverNow();
    for (const tr of $("peers").rows) {
      const peer = this.peers.get(tr.dataset.peerId);
      if (!peer) continue;
      tr.querySelector(".seen").textContent = peer.last_seen ? relativeTime(now - peer.last_seen) : "从未";
      tr.querySelector(".changed").textContent = peer.changed_at ? `${shortTime(peer.changed_at, now)} 起` : "—";
    }
  }
}

function main() {
  const params = new URLSearchParams(location.search);
  const hall = params.get("hall");
  const token = readToken(params);
  if (!hall || !/^\d+$/.test(hall)) {
    stopNotice("缺少大厅编号：请在地址后加上 ?hall=大厅编号，或从首页进入。");
    return;
  }
  showHallName(PAGE_TITLE, `大厅 ${hall}`); // until the hall's snapshot names it
  if (!token) {
    stopNotice("尚未登录：请先登录管理后台，或在地址后加上 ?token=会话令牌。");
    return;
  }

  const client = new HubClient({ kind: "console", token, client: "status-page" });
  const board = new PresenceBoard(client);
  connectionBanner(client);
  client.subscribe(`presence:${hall}`, {
    onSnapshot: (data) => board.onSnapshot(data),
    onEvent: (event) => board.onEvent(event),
  });
  // The hall topic also carries queue events and notices: only its snapshot's name is shown.
  client.subscribe(`hall:${hall}`, {
    onSnapshot: (data) => {
      if (data?.name) showHallName(PAGE_TITLE, data.name);
    },
  });
  client.start();

  const everySecond = () => {
    $("clock").textContent = clockText(client.serverNow());
    board.refreshTimes();
  };
  everySecond();
  setInterval(everySecond, 1000);
  window.hallhub = { client, board }; // for the browser console
}

main();
