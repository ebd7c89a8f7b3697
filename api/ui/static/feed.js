// Live event feed of the overview page: follows /ui/feed (Server-Sent
// Events of the tenant's telemetry outbox) and lists the newest events.
// Everything else on the dashboard works without JavaScript.
(function () {
  "use strict";
  var list = document.getElementById("feed");
  var status = document.getElementById("feed-status");
  if (!list || !window.EventSource) { return; }
  var max = 50;
  function show(text) { status.textContent = text; }
  // Start a few events back: the page shows recent history, then live ones.
  var after = list.getAttribute("data-after") || "0";
  var es = new EventSource("/ui/feed?after=" + encodeURIComponent(after));
  es.onopen = function () { show("Connected: new events appear below as they happen."); };
  es.onerror = function () { show("The live feed is reconnecting…"); };
  es.onmessage = function (m) { add(m); };
  // The stream names each event (event: dripdrop.…): listen for every
  // catalog name the page lists.
  (list.getAttribute("data-events") || "").split(" ").forEach(function (n) {
    if (n) { es.addEventListener(n, add); }
  });
  function add(m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    var li = document.createElement("li");
    var meta = ev.metadata || {};
    var bits = [];
    ["adapter_id", "enrollment_id", "reason", "policy", "from", "to"].forEach(function (k) {
      if (meta[k] !== undefined && meta[k] !== null && meta[k] !== "") { bits.push(k + "=" + meta[k]); }
    });
    var t = ev.time ? new Date(ev.time).toISOString().replace("T", " ").slice(0, 19) : "";
    li.textContent = t + "  " + ev.name + (bits.length ? "  " + bits.join(" ") : "");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > max) { list.removeChild(list.lastChild); }
  }
})();
