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
 * The staff session token: `?token=` (then kept in localStorage and removed from the address
 * bar, so it is not left on screen or in bookmarks) or localStorage `hallhub.token`.
 */
export function readToken(params = new URLSearchParams(location.search)) {
  const fromUrl = params.get("token");
  if (fromUrl) {
    try {
      localStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      /* storage disabled: use it for this visit only */
    }
    const url = new URL(location.href);
    url.searchParams.delete("token");
    history.replaceState(null, "", url);
    return fromUrl;
  }
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}
