// The exposure page (portfolios/exposure_views.py). Its charts are plotly.js bars
// (from the installed plotly package), drawn from each chart div's data-values; the
// results are fetched again from the server, which values the book anew, whenever
// the "quotes" push topic says prices moved, at most once every REFRESH_MS (the
// page's own 30 s poll keeps them moving when nothing is pushed).
(function () {
  "use strict";
  const REFRESH_MS = 5000;
  const stateLabel = document.querySelector("[data-exposure-state]");
  const LAYOUT = {
    margin: { l: 16, r: 16, t: 8, b: 32 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { size: 12 },
    bargap: 0.2,
  };
  const CONFIG = { displayModeBar: false, responsive: true };

  function draw(div) {
    if (!window.Plotly || !div.dataset.values) return;
    const chart = JSON.parse(div.dataset.values);
    const trace = {
      type: "bar",
      orientation: "h",
      y: chart.labels.slice().reverse(),
      x: chart.values.slice().reverse(),
      customdata: chart.weights.slice().reverse().map((w) => (w === null ? 0 : w * 100)),
      marker: { color: chart.incomplete.slice().reverse().map((i) => (i ? "#d8a23b" : "#3b6fd8")) },
      hovertemplate: "%{y}: %{x:,.0f} (%{customdata:.2f}% of NAV)<extra></extra>",
    };
    const layout = Object.assign({}, LAYOUT, { xaxis: { tickformat: ",.0f" }, yaxis: { automargin: true } });
    window.Plotly.react(div, [trace], layout, CONFIG);
  }

  function drawAll(root) {
    root.querySelectorAll('[data-chart="exposure"]').forEach(draw);
  }

  let last = 0;
  let timer = null;
  function refresh() {
    timer = null;
    last = Date.now();
    if (!window.htmx) return;
    window.htmx.ajax("GET", window.location.pathname + window.location.search, {
      target: "#exposure-results",
      swap: "innerHTML",
    });
  }

  function pricesMoved() {
    if (timer !== null) return;
    timer = setTimeout(refresh, Math.max(0, last + REFRESH_MS - Date.now()));
  }

  document.addEventListener("DOMContentLoaded", () => drawAll(document));
  document.addEventListener("htmx:afterSwap", (event) => {
    drawAll(event.target);
    if (stateLabel) stateLabel.textContent = "values live, refreshed " + new Date().toLocaleTimeString();
  });
  if (window.OMS && window.OMS.push) {
    window.OMS.push.subscribe("quotes", (event) => { if (event.q || event.reset) pricesMoved(); }, {
      onState: (text) => { if (stateLabel && text !== "live" && text !== "live (polling)") stateLabel.textContent = "prices " + text; },
    });
  }
})();
