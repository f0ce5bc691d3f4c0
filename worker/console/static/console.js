// The console's live pages: one EventSource per tab; when an event names a topic the page
// shows, the page's part is fetched again and swapped in (no reload, no polling).
(function () {
  "use strict";

  function days(list) {
    return list.map(function (d) { return Date.parse(d + "T00:00:00Z") / 1000; });
  }

  function drawCharts(root) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      var seconds = el.dataset.unit === "s";  // x in epoch seconds, else UTC days
      var x = seconds ? JSON.parse(el.dataset.x) : days(JSON.parse(el.dataset.x));
      var y = JSON.parse(el.dataset.y);
      el.textContent = "";
      if (!x.length) {
        el.textContent = seconds ? "no job done in the last hour" : "nothing in the window";
        return;
      }
      var width = Math.max(320, el.clientWidth || 520);
      var half = seconds ? 30 : 43200;  // bars centred on their minute or day
      var range = null;
      if (el.dataset.from && el.dataset.to) {
        range = seconds
          ? [Number(el.dataset.from) - half, Number(el.dataset.to) + half]
          : [days([el.dataset.from])[0] - half, days([el.dataset.to])[0] + half];
      }
      new uPlot({
        width: width,
        height: 200,
        legend: { show: false },
        scales: {
          x: range ? { time: true, range: function () { return range; } } : { time: true },
          y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } },
        },
        axes: [{}, { size: 60 }],
        series: [{}, {
          label: el.dataset.label,
          stroke: "#2b6cb0",
          fill: "rgba(43,108,176,0.25)",
          paths: uPlot.paths.bars({ size: [0.7, 40] }),
          points: { show: false },
        }],
      }, [x, y], el);
    });
  }

  var main = document.getElementById("part");
  if (!main) return;
  drawCharts(main);
  var topics = (main.dataset.topics || "").split(" ");
  var busy = false;
  var again = false;

  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(main.dataset.src, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.redirected && new URL(r.url).pathname === "/login") {
          window.location.href = r.url;
          return null;
        }
        if (r.status === 403) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) return;
        main.innerHTML = html;
        drawCharts(main);
        main.dataset.updates = String(Number(main.dataset.updates || 0) + 1);
      })
      .catch(function () {})
      .finally(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  var events = new EventSource("/events");
  // Browsers hold few connections per site: a page left behind gives its stream back.
  window.addEventListener("pagehide", function () { events.close(); });
  events.onopen = function () { document.body.classList.add("live"); };
  events.onerror = function () { document.body.classList.remove("live"); };
  events.addEventListener("change", function (e) {
    if (topics.indexOf(e.data) >= 0) refresh();
  });
  events.addEventListener("expired", function () {
    events.close();
    window.location.href = "/login?expired=1";
  });
})();
