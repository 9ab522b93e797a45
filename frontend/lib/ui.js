// ui.js — small shared pieces of the pages: element builder, connection banner, times.

/** Build an element: h("td", {class: "x", dataset: {id: "1"}}, "text", child…). Text is
 * always set as text, never parsed as HTML (labels come from devices). */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const CLOSE_HINTS = {
  4401: "登录已失效，请重新登录",
  4403: "无权查看此内容，请联系管理员",
  4404: "订阅的内容不存在",
  4400: "页面与中心版本不一致，请刷新页面",
};

/**
 * A banner at the top of the page that says when the link to the hub is not live, and
 * `data-link` on <body> (connecting | live | reconnecting | stopped) so the page can dim
 * data that may be out of date. Returns the banner element.
 */
export function connectionBanner(client, { parent = document.body } = {}) {
  const title = h("span", { class: "conn-title" });
  const detail = h("span", { class: "conn-detail" });
  const banner = h("div", { class: "conn-banner", role: "status", "aria-live": "polite", hidden: true }, title, detail);
  parent.prepend(banner);

  const show = ({ state, code }) => {
    document.body.dataset.link = state;
    if (state === "live" || state === "stopped") {
      banner.hidden = true;
      return;
    }
    banner.hidden = false;
    banner.dataset.state = state;
    title.textContent = state === "connecting" ? "正在连接…" : "重新连接中…";
    detail.textContent =
      CLOSE_HINTS[code] ?? (state === "reconnecting" ? "与中心的连接已中断，显示的数据可能不是最新的" : "");
  };
  client.addEventListener("state", (event) => show(event.detail));
  show({ state: client.state, code: null });
  return banner;
}

/** "刚刚", "3 秒前", "5 分钟前", "2 小时前", "3 天前". */
export function relativeTime(seconds) {
  if (!Number.isFinite(seconds)) return "—";
  if (seconds < 1) return "刚刚";
  if (seconds < 60) return `${Math.floor(seconds)} 秒前`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} 分钟前`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} 小时前`;
  return `${Math.floor(seconds / 86400)} 天前`;
}

const pad = (n) => String(n).padStart(2, "0");

/** "14:05:09" for a unix time in seconds (the browser's time zone: the hall's). */
export function clockText(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "14:05" today, "3月2日 14:05" on another day. */
export function shortTime(unixSeconds, nowSeconds = Date.now() / 1000) {
  const d = new Date(unixSeconds * 1000);
  const now = new Date(nowSeconds * 1000);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.toDateString() === now.toDateString() ? hm : `${d.getMonth() + 1}月${d.getDate()}日 ${hm}`;
}

export const TOKEN_KEY = "hallhub.token";

/**
 * A token given in the address, kept: `?<param>=` (then kept in localStorage `key` and removed
 * from the address bar, so it is not left on screen or in bookmarks) or localStorage `key`.
 * By default the staff session token: `?token=`, `hallhub.token`; devices name their own
 * (`{param: "device_token", key: "hallhub.device_token"}`).
 */
export function readToken(params = new URLSearchParams(location.search), { param = "token", key = TOKEN_KEY } = {}) {
  const fromUrl = params.get(param);
  if (fromUrl) {
    try {
      localStorage.setItem(key, fromUrl);
    } catch {
      /* storage disabled: use it for this visit only */
    }
    const url = new URL(location.href);
    url.searchParams.delete(param);
    history.replaceState(null, "", url);
    return fromUrl;
  }
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Why the page cannot go on (a missing parameter or token), in #notice; the link is marked
 * stopped, so nothing on the page claims to be live. */
export function stopNotice(text) {
  const element = document.getElementById("notice");
  element.textContent = text;
  element.hidden = false;
  document.body.dataset.link = "stopped";
}

/** The hall's name in #hall-name and in the window title "<page> · <hall>". */
export function showHallName(page, name) {
  document.getElementById("hall-name").textContent = name;
  document.title = `${page} · ${name}`;
}

/** The identity documents the hub accepts (hub/domain/identity.py DOCUMENT_KINDS), in words. */
export const DOCUMENT_TEXT = Object.freeze({
  resident_id: "居民身份证",
  foreign_permanent_id: "外国人永久居留身份证",
  hmt_residence_permit: "港澳台居民居住证",
  hm_travel_permit: "港澳居民来往内地通行证",
  tw_travel_permit: "台湾居民来往大陆通行证",
  passport: "护照",
});

/** The document kinds as the <option>s of a <select>, the resident ID card (the default) first. */
export function documentOptions() {
  return Object.entries(DOCUMENT_TEXT).map(([kind, text]) => h("option", { value: kind }, text));
}
