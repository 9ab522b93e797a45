// device-token.js — a page that may run as one of the hall's registered devices (the kiosk,
// a ticket machine, the hall display, a window display): its device token, its link to the hub
// as that device, its own topic device:<id>, and what it does when the hub refuses the token.
//
// Without a token the page is a public one, as it always was. With one (`?device_token=`,
// kept in localStorage under the page's own key and removed from the address bar) its hello
// says the device's kind with the token, so the hub records the device online/offline in
// presence:<hall> and on the device page. A token the hub refuses (4401: unknown, revoked,
// expired, or another kind's) never leaves the screen blank: the page drops it for this visit
// and follows its topics publicly; `onPublic` may say so, discreetly (deviceNotice).
// `<body data-device>`: "linked" once welcomed as the device, "refused" after a refusal.
//
//   const token = readDeviceToken("hallhub.hall_display.device_token");
//   const client = deviceClient({
//     token, kind: "hall_display", publicKind: "hall_display", client: "hall-display",
//     onPublic: ({ said }) => deviceNotice(refusedText(said, "hall_display")),
//   });
//   followDevice(client, { onSnapshot: (data) => …, onEvent: (event) => … });

import { DEVICE_KIND_TEXT, deviceIdOf } from "./devices.js";
import { HubClient } from "./hub-client.js";
import { readToken } from "./ui.js";

export const DEVICE_TOKEN_PARAM = "device_token";

/** The device token: `?device_token=` (kept in localStorage `key`, then removed from the
 * address bar) or the one kept before; null for a public page. */
export function readDeviceToken(key, params = new URLSearchParams(location.search)) {
  return readToken(params, { param: DEVICE_TOKEN_PARAM, key });
}

/** The kind the hub names when it refuses another kind's token ("token belongs to a
 * window_display, not a hall_display"), or null (an unknown, revoked or expired token). */
export function refusedKindOf(reason) {
  return /token belongs to an? ([a-z_]+)/.exec(reason ?? "")?.[1] ?? null;
}

/**
 * The page's HubClient: as the device (`token`, hello kind `kind`) when there is a token, else
 * public (hello kind `publicKind`, no token). Not started (followHall starts it).
 *
 * When the hub refuses the token (close 4401): if it names another kind the page may be
 * (`kinds`, e.g. a kiosk page run by a ticket machine), the client says that kind from now on
 * (`onKind(kind)`); otherwise it drops the token for this visit, says `publicKind` and
 * `onPublic({said, reason})` runs (`said`: the kind the hub named, or null). Either way the
 * client starts again at once, without a reload. The kept token stays in storage: a reload
 * tries it again, a new `?device_token=` replaces it.
 */
export function deviceClient({
  token,
  kind,
  publicKind,
  client,
  kinds = [kind],
  onKind = () => {},
  onPublic = () => {},
  label = client,
}) {
  const hub = token
    ? new HubClient({ kind, token, client })
    : new HubClient({ kind: publicKind, client });
  hub.addEventListener("state", (event) => {
    const { code, reason } = event.detail;
    if (code !== 4401 || !hub.token) return;
    const said = refusedKindOf(reason);
    // After the client's own handling of the close (it schedules a slow retry): restart now.
    setTimeout(() => {
      hub.stop();
      if (kinds.includes(said) && said !== hub.kind) {
        hub.kind = said;
        onKind(said);
      } else {
        console.warn(
          `${label}: the hub refused this device token (${said ? `a ${said}'s` : "unknown or revoked"}); following publicly`,
        );
        hub.token = null;
        hub.kind = publicKind;
        document.body.dataset.device = "refused";
        onPublic({ said, reason });
      }
      hub.start();
    }, 0);
  });
  return hub;
}

/**
 * After every welcome as a device peer (peer.id "device:<n>"): `<body data-device-id>`,
 * `onLinked(id)`, and, when handlers are given, the device's own topic device:<id> followed
 * with them (its DeviceSnapshot: kind, name, hall_id, window_id, host_id, config…). A public
 * welcome changes nothing.
 */
export function followDevice(client, { onLinked = () => {}, onSnapshot = null, onEvent = null } = {}) {
  const follows = Boolean(onSnapshot || onEvent);
  let deviceId = null;
  client.addEventListener("welcome", (event) => {
    const id = deviceIdOf(event.detail?.peer?.id);
    if (id === null || id === deviceId) return;
    if (deviceId !== null && follows) client.unsubscribe(`device:${deviceId}`);
    deviceId = id;
    document.body.dataset.deviceId = String(id);
    document.body.dataset.device = "linked";
    onLinked(id);
    if (follows) {
      client.subscribe(`device:${id}`, {
        onSnapshot: (data, meta) => onSnapshot?.(data, meta),
        onEvent: (event) => onEvent?.(event),
      });
    }
  });
}

/** For the IT admin, in words: why the page runs publicly although it was given a token
 * (`said`: the kind the hub named, `kind`: the page's). */
export function refusedText(said, kind) {
  const page = DEVICE_KIND_TEXT[kind] ?? kind;
  if (said && said !== kind) {
    return `设备凭证属于“${DEVICE_KIND_TEXT[said] ?? said}”，不能用于${page}；本屏以公开方式显示，请管理员核对设备登记`;
  }
  return `设备凭证无效或已停用；本屏以公开方式显示，请管理员重新登记本${page}`;
}

/** A small, discreet line for the IT admin in #device-notice; the screen itself goes on. */
export function deviceNotice(text) {
  const element = document.getElementById("device-notice");
  if (!element) return;
  element.textContent = text;
  element.hidden = false;
}
