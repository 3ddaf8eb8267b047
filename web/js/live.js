// The live feed: one WebSocket on /ws, authenticated before the upgrade by the subprotocol header
// ("bearer, <token>": never the URL). Every message has the user's next seq; after a dropped
// connection the socket reopens with ?since=<the last seq seen>, and the server replays what was
// missed, so nothing is lost and a seq already seen is ignored.

export class LiveFeed {
  constructor({ token, expiresAt, since, onMessage, onState, onRefused }) {
    this.token = token;
    this.expiresAt = expiresAt; // seconds since the epoch, or Infinity when the token does not say
    this.lastSeq = since;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onRefused = onRefused;
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.wake = () => this.reconnectNow();
  }

  start() {
    addEventListener("online", this.wake);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.wake);
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "signed out");
    this.onState("off");
  }

  url() {
    const url = new URL("/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("since", String(this.lastSeq));
    return url;
  }

  connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    let socket;
    try {
      socket = new WebSocket(this.url(), ["bearer", this.token]);
    } catch {
      // Not a JWT-shaped token (a subprotocol is a single HTTP token): no live feed, say so.
      this.stopped = true;
      this.onState("off");
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.onState("live");
    });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (!message || !Number.isSafeInteger(message.seq) || message.seq <= this.lastSeq) return;
      this.lastSeq = message.seq;
      this.onMessage(message);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (event.code === 1008 || Date.now() / 1000 >= this.expiresAt) {
        // The server's own refusal after the upgrade: the token expired (or no longer passes).
        this.onRefused(event.reason || "the live connection was refused");
        return;
      }
      this.onState("reconnecting");
      const delay = Math.min(5000, 250 * 2 ** this.attempt) + Math.random() * 250;
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  reconnectNow() {
    if (!this.stopped && !this.socket) {
      this.attempt = 0;
      this.connect();
    }
  }
}
