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

  var history = read("history-data");
  var historyCanvas = document.getElementById("history-chart");
  if (history && historyCanvas) {
    new Chart(historyCanvas, {
      type: "line",
      data: {
        labels: read("history-labels"),
        datasets: [{ label: "库存", data: history, stepped: "before", borderColor: "#1f6feb",
                     backgroundColor: "rgba(31,111,235,0.12)", fill: true, pointRadius: 3 }]
      },
      options: {
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } }, x: { ticks: { maxTicksLimit: 6 } } },
        plugins: { legend: { display: false } }
      }
    });
  }
})();
