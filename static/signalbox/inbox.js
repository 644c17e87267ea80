/* <signalbox-inbox>: the embeddable inbox, a dependency-free custom element with a shadow root.
 *
 * A bell with the unread badge; a dropdown of the newest notifications and broadcasts (title,
 * body, time, link) with "Mark as read" and "Mark all as read"; live updates over the same
 * Server-Sent Events stream the inbox page listens to (notifications/inbox/live.py). Rendered by
 * `{% signalbox_inbox %}` (notifications/templatetags/signalbox_inbox.py), which fills in:
 *
 *   feed-url      GET: the newest items and the unread count as JSON (notifications:feed)
 *   stream-url    the live stream (notifications:stream); its "inbox" events carry the counts
 *   mark-all-url  POST: mark everything read (notifications:mark_all_read)
 *   inbox-url     the full inbox page ("Open inbox")
 *   csrf-token    sent as X-CSRFToken with every POST
 *   stylesheet    the component's CSS (signalbox/inbox.css), loaded inside the shadow root
 *   labels        JSON: the interface's strings in the page's language (English built in)
 *   lang          the language for times ("3 minutes ago"); defaults to the page's <html lang>
 *   limit         how many items the dropdown shows (1-50, default 10)
 *
 * Runs under the recipient pages' Content-Security-Policy (config/csp.py: no inline scripts or
 * styles): the CSS is a <link> to a static file, the DOM is built with textContent (a title is
 * shown as text, never markup), and nothing sets a style attribute. Themed from outside with CSS
 * custom properties (--signalbox-inbox-*, see README "Embeddable inbox") and ::part().
 */
(function () {
  "use strict";

  if (window.customElements.get("signalbox-inbox")) return;

  var DEFAULT_LABELS = {
    notifications: "Notifications",
    unread: "{n} unread",
    bellUnread: "Notifications, {n} unread",
    markRead: "Mark as read",
    markAllRead: "Mark all as read",
    empty: "You're all caught up.",
    openInbox: "Open inbox",
    announcement: "Announcement",
    unreadItem: "Unread",
    loadError: "Could not load your notifications.",
  };
  var BELL = '<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false">' +
    '<path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22zm7-6V11a7 7 0 0 0-5.5-6.84V3.5' +
    'a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2z"/></svg>';
  // Fixed markup only: every text that comes from the server or the labels goes in as textContent.
  var SKELETON =
    '<div class="root" part="root">' +
    '  <button type="button" class="bell" part="bell" aria-haspopup="dialog" aria-expanded="false"' +
    '          aria-controls="panel" data-testid="inbox-bell">' + BELL +
    '    <span class="badge" part="badge" data-testid="inbox-badge" hidden>0</span>' +
    '  </button>' +
    '  <div class="panel" part="panel" id="panel" role="dialog" tabindex="-1" hidden data-testid="inbox-panel">' +
    '    <div class="head" part="head">' +
    '      <h2 class="heading" id="heading"></h2>' +
    '      <button type="button" class="mark-all" part="button" data-testid="inbox-mark-all" hidden></button>' +
    '    </div>' +
    '    <p class="error" role="alert" hidden></p>' +
    '    <ul class="list" part="list" data-testid="inbox-list"></ul>' +
    '    <p class="empty" data-testid="inbox-empty" hidden></p>' +
    '    <a class="all" part="link"></a>' +
    '  </div>' +
    '  <span class="sr-only" aria-live="polite"></span>' +
    '</div>';
  var TIME_UNITS = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600],
    ["minute", 60]];

  class SignalboxInbox extends HTMLElement {
    constructor() {
      super();
      this.attachShadow({mode: "open"});
      this._items = [];
      this._unread = 0;
      this._state = "";
      this._source = null;
      this._loading = null;
      this._reloadAgain = false;
      this._onDocumentClick = this._onDocumentClick.bind(this);
      this._onDocumentKeydown = this._onKeydown.bind(this);
    }

    connectedCallback() {
      if (this._built) {
        this._connectStream();
        document.addEventListener("click", this._onDocumentClick);
        document.addEventListener("keydown", this._onDocumentKeydown);
        return;
      }
      this._built = true;
      this.labels = Object.assign({}, DEFAULT_LABELS, this._jsonAttribute("labels"));
      var root = this.shadowRoot;
      var stylesheet = this.getAttribute("stylesheet");
      if (stylesheet) {
        var link = document.createElement("link");
        link.rel = "stylesheet";
        link.href = stylesheet;
        root.appendChild(link);
      }
      var template = document.createElement("template");
      template.innerHTML = SKELETON;
      root.appendChild(template.content);
      this._bell = root.querySelector(".bell");
      this._badge = root.querySelector(".badge");
      this._panel = root.querySelector(".panel");
      this._list = root.querySelector(".list");
      this._empty = root.querySelector(".empty");
      this._error = root.querySelector(".error");
      this._markAll = root.querySelector(".mark-all");
      this._announcer = root.querySelector(".sr-only");
      var heading = root.querySelector(".heading");
      heading.textContent = this.labels.notifications;
      this._panel.setAttribute("aria-labelledby", "heading");
      this._markAll.textContent = this.labels.markAllRead;
      this._empty.textContent = this.labels.empty;
      var all = root.querySelector(".all");
      all.textContent = this.labels.openInbox;
      if (this.getAttribute("inbox-url")) all.href = this.getAttribute("inbox-url"); else all.hidden = true;

      this._bell.addEventListener("click", () => this.toggle());
      this._markAll.addEventListener("click", () => this.markAllRead());
      this._list.addEventListener("click", (event) => this._onListClick(event));
      // Escape closes from the bell, the panel, or the page (focus may have gone back to it).
      document.addEventListener("click", this._onDocumentClick);
      document.addEventListener("keydown", this._onDocumentKeydown);

      var initial = parseInt(this.getAttribute("unread") || "0", 10);
      this._setUnread(isNaN(initial) ? 0 : initial, false);
      this._state = this.getAttribute("state") || "";
      // The tag rendered the count and the stream state of this moment: the stream starts from
      // them (it reports any change since) and the list is read when the dropdown opens. An
      // element written by hand, without a state, reads the feed first.
      if (this._state) this._connectStream();
      else this.reload().then(() => this._connectStream());
    }

    disconnectedCallback() {
      document.removeEventListener("click", this._onDocumentClick);
      document.removeEventListener("keydown", this._onDocumentKeydown);
      if (this._source) {
        this._source.close();
        this._source = null;
      }
    }

    get open() {
      return !this._panel.hidden;
    }

    get unread() {
      return this._unread;
    }

    toggle() {
      if (this.open) this.close(); else this.show();
    }

    show() {
      this._panel.hidden = false;
      this._bell.setAttribute("aria-expanded", "true");
      this._panel.focus();
      this.reload();
    }

    close(options) {
      if (!this.open) return;
      this._panel.hidden = true;
      this._bell.setAttribute("aria-expanded", "false");
      if (!options || options.focus !== false) this._bell.focus();
    }

    /* Read the newest items and the unread count again. Calls that arrive while a read is under
     * way are folded into one more read after it, so a burst of events costs two requests. */
    reload() {
      if (this._loading) {
        this._reloadAgain = true;
        return this._loading;
      }
      var url = new URL(this.getAttribute("feed-url"), window.location.href);
      url.searchParams.set("limit", this.getAttribute("limit") || "10");
      this._loading = fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then((response) => {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then((data) => {
          this._error.hidden = true;
          this._state = data.state;
          this._items = data.items;
          this._setUnread(data.unread, true);
          this._render();
        })
        .catch(() => {
          this._error.textContent = this.labels.loadError;
          this._error.hidden = false;
        })
        .then(() => {
          this._loading = null;
          if (this._reloadAgain) {
            this._reloadAgain = false;
            return this.reload();
          }
        });
      return this._loading;
    }

    markRead(item, options) {
      return this._post(item.mark_read_url, options);
    }

    markAllRead() {
      return this._post(this.getAttribute("mark-all-url"));
    }

    _post(url, options) {
      var body = new FormData();
      body.append("csrfmiddlewaretoken", this.getAttribute("csrf-token") || "");
      // The POST views answer the inbox page with a redirect; only whether it worked matters here.
      return fetch(url, {
        method: "POST", body: body, credentials: "same-origin", redirect: "manual",
        keepalive: Boolean(options && options.keepalive),
        headers: {"X-CSRFToken": this.getAttribute("csrf-token") || ""},
      }).then((response) => {
        if (response.type !== "opaqueredirect" && !response.ok) throw new Error("HTTP " + response.status);
      }).catch(() => {
        this._error.textContent = this.labels.loadError;
        this._error.hidden = false;
      }).then(() => this.reload());
    }

    _connectStream() {
      var streamUrl = this.getAttribute("stream-url");
      if (!streamUrl || this._source || typeof EventSource === "undefined") return;
      var url = new URL(streamUrl, window.location.href);
      if (this._state) url.searchParams.set("state", this._state);
      this._source = new EventSource(url, {withCredentials: true});
      this._source.addEventListener("inbox", (event) => {
        var data;
        try {
          data = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        // The event carries the count: the badge changes at once, the list follows.
        if (typeof data.unread === "number") this._setUnread(data.unread, true);
        this.reload();
      });
    }

    _setUnread(count, announce) {
      var changed = count !== this._unread;
      this._unread = count;
      this._badge.textContent = count > 99 ? "99+" : String(count);
      this._badge.hidden = count === 0;
      this.toggleAttribute("has-unread", count > 0);
      var label = count ? this.labels.bellUnread.replace("{n}", count) : this.labels.notifications;
      this._bell.setAttribute("aria-label", label);
      if (announce && changed) this._announcer.textContent = this.labels.unread.replace("{n}", count);
      if (changed) this.dispatchEvent(new CustomEvent("signalbox-inbox:unread", {detail: {unread: count}}));
    }

    _render() {
      var focused = this.shadowRoot.activeElement;
      var focusedItem = focused && focused.closest ? focused.closest(".item") : null;
      var focusedId = focusedItem ? focusedItem.dataset.id : null;
      this._list.replaceChildren.apply(this._list, this._items.map((item) => this._renderItem(item)));
      this._empty.hidden = this._items.length > 0;
      this._markAll.hidden = this._unread === 0;
      var active = this.shadowRoot.activeElement;
      if (focused && this.open && (!active || active.hidden || !this._panel.contains(active))) {
        // What had focus ("Mark as read", "Mark all as read") is gone: keep the place in the list.
        var again = focusedId ? this._list.querySelector('.item[data-id="' + focusedId + '"]') : null;
        (again || this._panel).focus();
      }
    }

    _renderItem(item) {
      var li = document.createElement("li");
      li.className = "item" + (item.read ? "" : " unread") + (item.kind === "broadcast" ? " broadcast" : "");
      li.setAttribute("part", item.read ? "item" : "item unread");
      li.dataset.id = item.id;
      li.dataset.testid = "inbox-item";
      li.tabIndex = -1;
      var title;
      if (item.url) {
        title = document.createElement("a");
        title.href = item.url;
        title.dataset.action = "open";
      } else {
        title = document.createElement("span");
      }
      title.className = "title";
      title.textContent = item.title;
      var top = document.createElement("div");
      top.className = "top";
      if (!item.read) {
        var dot = document.createElement("span");
        dot.className = "dot";
        dot.setAttribute("role", "img");
        dot.setAttribute("aria-label", this.labels.unreadItem);
        top.appendChild(dot);
      }
      top.appendChild(title);
      if (item.kind === "broadcast") {
        var chip = document.createElement("span");
        chip.className = "chip";
        chip.textContent = this.labels.announcement;
        top.appendChild(chip);
      }
      li.appendChild(top);
      if (item.body) {
        var body = document.createElement("p");
        body.className = "body";
        body.textContent = item.body;
        li.appendChild(body);
      }
      var foot = document.createElement("div");
      foot.className = "foot";
      var time = document.createElement("time");
      time.dateTime = item.created_at;
      var when = new Date(item.created_at);
      time.textContent = this._relativeTime(when);
      time.title = when.toLocaleString(this._lang());
      foot.appendChild(time);
      if (!item.read) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "mark-read";
        button.setAttribute("part", "button");
        button.dataset.action = "read";
        button.dataset.testid = "inbox-mark-read";
        button.textContent = this.labels.markRead;
        foot.appendChild(button);
      }
      li.appendChild(foot);
      return li;
    }

    _onListClick(event) {
      var target = event.target.closest("[data-action]");
      if (!target) return;
      var li = target.closest(".item");
      var item = this._items.find((candidate) => candidate.id === li.dataset.id);
      if (!item) return;
      if (target.dataset.action === "read") {
        this.markRead(item);
      } else if (target.dataset.action === "open" && !item.read) {
        // Follow the link as any link; the read mark is sent with keepalive so it survives leaving.
        this.markRead(item, {keepalive: true});
      }
    }

    _onKeydown(event) {
      if (event.key === "Escape" && this.open) {
        event.preventDefault();
        event.stopPropagation();
        this.close();
      }
    }

    _onDocumentClick(event) {
      if (this.open && !event.composedPath().includes(this)) this.close({focus: false});
    }

    _lang() {
      return this.getAttribute("lang") || document.documentElement.lang || undefined;
    }

    _relativeTime(when) {
      var seconds = (when.getTime() - Date.now()) / 1000;
      var format;
      try {
        format = new Intl.RelativeTimeFormat(this._lang(), {numeric: "auto"});
      } catch (error) {
        format = new Intl.RelativeTimeFormat(undefined, {numeric: "auto"});
      }
      for (var i = 0; i < TIME_UNITS.length; i++) {
        var unit = TIME_UNITS[i];
        if (Math.abs(seconds) >= unit[1]) return format.format(Math.round(seconds / unit[1]), unit[0]);
      }
      return format.format(0, "second");
    }

    _jsonAttribute(name) {
      try {
        return JSON.parse(this.getAttribute(name) || "{}");
      } catch (error) {
        return {};
      }
    }
  }

  window.customElements.define("signalbox-inbox", SignalboxInbox);
})();
