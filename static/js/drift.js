// The drift dashboard's charts (plotly.js, served from the installed plotly package).
// Each chart is a div holding its figures as JSON (data-values); after an HTMX swap
// of the results (a filter, a sort, a page) the charts in the new content are drawn.
(function () {
  "use strict";

  var LAYOUT = {
    margin: { l: 48, r: 16, t: 8, b: 40 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { size: 12 },
    bargap: 0.05,
  };
  var CONFIG = { displayModeBar: false, responsive: true };

  function data(div) {
    // The figures ride in a data attribute: HTMX drops script elements it swaps in.
    return div.dataset.values ? JSON.parse(div.dataset.values) : null;
  }

  function histogram(div, chart) {
    var trace = {
      type: "bar",
      x: chart.bins.map(function (b) { return b.x; }),
      y: chart.bins.map(function (b) { return b.y; }),
      width: chart.bins.map(function () { return chart.width; }),
      marker: { color: "#3b6fd8" },
      hovertemplate: "%{x:.2f}% drift: %{y} accounts<extra></extra>",
    };
    var layout = Object.assign({}, LAYOUT, {
      xaxis: { title: { text: "Drift (% of value)" }, ticksuffix: "%" },
      yaxis: { title: { text: "Accounts" } },
    });
    window.Plotly.react(div, [trace], layout, CONFIG);
  }

  function weights(div, chart) {
    var part = chart[div.dataset.key];
    var traces = [
      { type: "bar", name: "Weight", x: part.labels, y: part.weight, marker: { color: "#3b6fd8" } },
      { type: "bar", name: "Target", x: part.labels, y: part.target, marker: { color: "#b9c6dd" } },
    ];
    var layout = Object.assign({}, LAYOUT, {
      barmode: "group",
      yaxis: { title: { text: "% of value" }, ticksuffix: "%" },
      legend: { orientation: "h", y: 1.1 },
    });
    window.Plotly.react(div, traces, layout, CONFIG);
  }

  var DRAW = { histogram: histogram, weights: weights };

  function drawAll(root) {
    if (!window.Plotly) return;
    root.querySelectorAll("[data-chart]").forEach(function (div) {
      var chart = data(div);
      var draw = DRAW[div.dataset.chart];
      if (chart && draw) draw(div, chart);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawAll(event.target); });
})();
