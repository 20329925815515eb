/* Charts of the console, drawn with the vendored Chart.js from JSON embedded in the page. */
(function () {
  "use strict";
  if (typeof Chart === "undefined") return;

  function read(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#57606a";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  var daily = read("daily-data");
  var dailyCanvas = document.getElementById("daily-chart");
  if (daily && dailyCanvas) {
    var datasets = [
      { label: "入库", data: daily.map(function (d) { return d["in"]; }), backgroundColor: "#2da44e" },
      { label: "出库", data: daily.map(function (d) { return d.out; }), backgroundColor: "#cf222e" }
    ];
    if (dailyCanvas.dataset.adjust === "true" && daily.some(function (d) { return d.adjust !== 0; })) {
      datasets.push({ label: "调整", data: daily.map(function (d) { return d.adjust; }), backgroundColor: "#bf8700" });
    }
    new Chart(dailyCanvas, {
      type: "bar",
      data: { labels: daily.map(function (d) { return d.date.slice(5); }), datasets: datasets },
      options: {
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { grid: { display: false } } },
        plugins: { legend: { position: "bottom" } }
      }
    });
  }

  // A product's level over time: points at their moments (`x`, epoch milliseconds) on a
  // linear axis, so movements are spaced by the time between them, not one step each.
  var history = read("history-data");
  var historyCanvas = document.getElementById("history-chart");
  if (history && historyCanvas) {
    var zone = historyCanvas.dataset.zone || "UTC";
    var span = history.length ? history[history.length - 1].x - history[0].x : 0;
    var parts = { month: "2-digit", day: "2-digit", timeZone: zone, hourCycle: "h23" };
    if (span < 3 * 86400000) { parts.hour = "2-digit"; parts.minute = "2-digit"; }
    var format = new Intl.DateTimeFormat("zh-CN", parts);
    new Chart(historyCanvas, {
      type: "line",
      data: {
        datasets: [{ label: "库存", data: history, stepped: "before", borderColor: "#1f6feb",
                     backgroundColor: "rgba(31,111,235,0.12)", fill: true, pointRadius: 3 }]
      },
      options: {
        parsing: false,
        scales: {
          y: { beginAtZero: true, ticks: { precision: 0 } },
          x: {
            type: "linear",
            // From the first movement to the last (a single one: an hour either side).
            min: history[0].x - (span ? 0 : 3600000),
            max: history[history.length - 1].x + (span ? 0 : 3600000),
            ticks: {
              maxTicksLimit: 6,
              // Two ticks in one day (or minute) would read the same: only the first is labelled.
              callback: function (value, index, ticks) {
                var label = format.format(new Date(value));
                return index > 0 && format.format(new Date(ticks[index - 1].value)) === label ? "" : label;
              }
            }
          }
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { title: function (items) { return items[0].raw.label; } } }
        }
      }
    });
  }
})();
