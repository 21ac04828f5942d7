// A block's page follows its block on the push channel: its row and its routes,
// executions and allocations are fetched again when the block changes (one
// request each per burst), never polled.
(function () {
  "use strict";
  const table = document.getElementById("block-table");
  if (!table || !window.OMS || !window.OMS.push) return;
  const block = table.dataset.block;
  let timer = null;

  function widths(root) {
    root.querySelectorAll(".meter-fill[data-width]").forEach((bar) => {
      bar.style.width = Math.min(100, Number(bar.dataset.width) || 0) + "%";
    });
  }
  widths(document);

  async function swap(url, selector, wrap) {
    const response = await fetch(url, { headers: { "HX-Request": "true" } });
    if (!response.ok) return;
    const holder = document.createElement("template");
    holder.innerHTML = await response.text();
    const fresh = holder.content.querySelector(selector);
    const old = document.querySelector(wrap || selector);
    if (fresh && old) old.replaceWith(fresh);
  }

  async function refresh() {
    timer = null;
    // a form being filled in (an amend) is not swapped away under the trader
    if (document.querySelector("#block-fills details[open]")) { timer = setTimeout(refresh, 1000); return; }
    await swap(table.dataset.rowUrl, "tr.block-row", "#block-" + block);
    await swap(table.dataset.fillsUrl, "#block-fills");
    widths(document);
  }

  window.OMS.push.subscribe("blotter", (event) => {
    if (event.reset || String(event.block) === block) {
      if (!timer) timer = setTimeout(refresh, 100);
    }
  });
})();
