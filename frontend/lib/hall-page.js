// hall-page.js — how a public page of one hall (hall display, window display, kiosk) follows
// topic hall:<id>: the connection banner, the view's snapshot and event handlers, the clock,
// and a fresh snapshot once the hall's service day has changed (queue-state.js DayWatch);
// the flash of a call just made on the displays; and a display's link to the hub, as its
// registered device when it has a token (device-token.js), public otherwise.
//
//   const token = readDeviceToken("hallhub.window_display.device_token");
//   const client = displayClient({ token, kind: "window_display", client: "window-display" });
//   followHall(client, hall, display, { everySecond: (now) => … });

import { deviceClient, deviceNotice, refusedText } from "./device-token.js";
import { DayWatch } from "./queue-state.js";
import { clockText, connectionBanner } from "./ui.js";

// A new call flashes this long (style.css .flash).
export const FLASH_MS = 6000;
const flashTimers = new WeakMap();

/**
 * A display's HubClient (not started): with a device `token`, hello as that device of kind
 * `kind` (hall_display, window_display), so the hall's managers see the screen online or
 * offline; without one, public (hello kind `kind`, no token), as the displays always were.
 * A token the hub refuses (revoked, another kind's) makes the display public for this visit,
 * with a discreet line for the IT admin in #device-notice: the screen is never left blank.
 */
export function displayClient({ token, kind, client, onPublic = () => {} }) {
  return deviceClient({
    token,
    kind,
    publicKind: kind,
    client,
    onPublic: (refusal) => {
      deviceNotice(refusedText(refusal.said, kind));
      onPublic(refusal);
    },
  });
}

/**
 * Follow hall:<hall> with `client` for `view` ({onSnapshot(data), onEvent(event), queue,
 * timezone}) and start the client. Once a second: #clock shows the hub's time, a view whose
 * `queue` is of a past service day (in the hall's `timezone`) is subscribed afresh (the new
 * day by a snapshot), then `everySecond(now)` runs with the hub's time in unix seconds.
 */
export function followHall(client, hall, view, { everySecond = () => {} } = {}) {
  connectionBanner(client);
  const topic = `hall:${hall}`;
  const follow = () =>
    client.subscribe(topic, {
      onSnapshot: (data) => view.onSnapshot(data),
      onEvent: (event) => view.onEvent(event),
    });
  follow();
  client.start();

  const dayWatch = new DayWatch();
  const tick = () => {
    const now = client.serverNow();
    document.getElementById("clock").textContent = clockText(now);
    if (dayWatch.due(view.queue, view.timezone, now)) {
      client.unsubscribe(topic);
      follow();
    }
    everySecond(now);
  };
  tick();
  setInterval(tick, 1000);
}

/** Flash `element` for FLASH_MS (class "flash"): a new call; from the start again if it is
 * still flashing from the one before. */
export function flashCall(element) {
  element.classList.remove("flash");
  void element.offsetWidth; // restart the animation
  element.classList.add("flash");
  clearTimeout(flashTimers.get(element));
  flashTimers.set(element, setTimeout(() => element.classList.remove("flash"), FLASH_MS));
}
