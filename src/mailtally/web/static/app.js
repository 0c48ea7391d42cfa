// Charts over the figures each page already shows as a table: the page reads without this.
(function () {
  "use strict";

  function drawTimeline(root) {
    var holder = root.querySelector("#timeline-chart");
    var data = root.querySelector("#timeline-data");
    if (!holder || !data || typeof uPlot === "undefined" || holder.dataset.drawn) return;
    var d = JSON.parse(data.textContent);
    holder.dataset.drawn = "1";
    var width = Math.max(320, holder.clientWidth || 800);
    var opts = {
      width: width, height: 300,
      scales: { x: { time: true } },
      series: [
        { label: "Time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}" },
        { label: "Opens", stroke: "#0b57a4", width: 2, fill: "rgba(11,87,164,0.08)" },
        { label: "Clicks", stroke: "#b34700", width: 2, dash: [6, 3] }
      ],
      axes: [{}, { label: "per bucket" }],
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }
    };
    new uPlot(opts, [d.x, d.opens, d.clicks], holder);
  }

  function init(root) { drawTimeline(root || document); }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSwap", function (e) { init(e.target); });
})();
