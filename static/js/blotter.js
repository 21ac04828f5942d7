// The blotter: rows follow the push channel (one fetch for every burst of
// changes, with the page's own filters), and the desk works from the keyboard:
// ↑/↓ or j/k move, r opens the route ticket, a the amend ticket, Enter in the
// ticket sends, Esc closes, Enter on a row opens its block, / searches.
(function () {
  "use strict";
  const table = document.getElementById("blotter");
  if (!table) return;
  const body = document.getElementById("blotter-body");
  const state = document.getElementById("push-state");
  const rowsUrl = table.dataset.rowsUrl;
  const query = table.dataset.query;
  const csrf = document.querySelector("#ticket-form [name=csrfmiddlewaretoken]");

  function widths(root) {
    root.querySelectorAll(".meter-fill[data-width]").forEach((bar) => {
      bar.style.width = Math.min(100, Number(bar.dataset.width) || 0) + "%";
    });
  }
  widths(document);

  // --- following changes -----------------------------------------------------
  const changed = new Set();
  let timer = null;
  let fetching = false;

  function shown() {
    return Array.from(body.querySelectorAll("tr.block-row")).map((tr) => tr.dataset.block);
  }

  async function refresh() {
    timer = null;
    if (fetching) { schedule(); return; }
    const ids = Array.from(changed);
    changed.clear();
    if (!ids.length) return;
    fetching = true;
    try {
      const url = rowsUrl + "?ids=" + ids.join(",") + (query ? "&" + query : "");
      const response = await fetch(url, { headers: { "X-Requested-With": "fetch" } });
      if (!response.ok) throw new Error(String(response.status));
      const holder = document.createElement("template");
      holder.innerHTML = await response.text();
      const selected = document.activeElement && document.activeElement.dataset
        ? document.activeElement.dataset.block : null;
      holder.content.querySelectorAll("tr.block-row").forEach((row) => {
        const old = document.getElementById(row.id);
        row.classList.add("flash");
        if (old) old.replaceWith(row);
        else {
          const empty = body.querySelector(".empty-row");
          if (empty) empty.remove();
          body.prepend(row); // a new block: newest first
        }
        if (selected === row.dataset.block) row.focus();
      });
      (response.headers.get("X-Blotter-Gone") || "").split(",").filter(Boolean).forEach((id) => {
        const gone = document.getElementById("block-" + id);
        if (gone) gone.remove();
      });
      widths(body);
    } catch (error) {
      ids.forEach((id) => changed.add(id));
      schedule(500);
    } finally {
      fetching = false;
    }
  }

  function schedule(delay) {
    if (!timer) timer = setTimeout(refresh, delay === undefined ? 100 : delay);
  }

  if (window.OMS && window.OMS.push) {
    window.OMS.push.subscribe("blotter", (event) => {
      if (event.reset) { shown().forEach((id) => changed.add(id)); schedule(); return; }
      if (!event.block) return;
      const row = document.getElementById("block-" + event.block);
      if (event.v && row && row.dataset.version === event.v) return; // shown already
      changed.add(String(event.block));
      schedule();
    }, {
      onState(text, mode) {
        if (state) { state.textContent = text; state.dataset.mode = mode; }
      },
    });
  }

  // --- keyboard ----------------------------------------------------------------
  const dialog = document.getElementById("ticket");
  const form = document.getElementById("ticket-form");
  let ticketRow = null;
  let ticketUrl = null;

  function rows() { return Array.from(body.querySelectorAll("tr.block-row")); }
  function current() {
    const active = document.activeElement;
    return active && active.classList && active.classList.contains("block-row") ? active : null;
  }
  function move(step) {
    const list = rows();
    if (!list.length) return;
    const at = list.indexOf(current());
    const next = list[Math.max(0, Math.min(list.length - 1, at < 0 ? 0 : at + step))];
    next.focus();
  }

  function open(kind) {
    const row = current() || rows()[0];
    if (!row || !dialog) return;
    const amend = kind === "amend";
    const url = amend ? row.dataset.amendUrl : row.dataset.routeUrl;
    if (!url) {
      row.classList.add("refused");
      setTimeout(() => row.classList.remove("refused"), 600);
      return;
    }
    ticketRow = row;
    ticketUrl = url;
    dialog.dataset.kind = kind;
    document.getElementById("ticket-title").textContent = amend ? "Amend" : "Route";
    document.getElementById("ticket-what").textContent = amend
      ? row.dataset.amendClordid + " · " + row.dataset.side + " " + row.dataset.ticker
      : "#" + row.dataset.block + " · " + row.dataset.side + " " + row.dataset.ticker +
        " · " + row.dataset.unrouted + " left to route";
    const quantity = document.getElementById("ticket-quantity");
    // A route left blank takes what is left in the units the chosen broker takes (a
    // fractional block goes to a whole-unit broker rounded down), so it is not filled in.
    quantity.value = amend ? row.dataset.amendQuantity : "";
    quantity.placeholder = amend ? "" : "all that is left (" + row.dataset.unrouted + ")";
    document.getElementById("ticket-limit").value = amend ? row.dataset.amendLimit : "";
    document.getElementById("ticket-limit").disabled = !(amend && row.dataset.amendLimit);
    document.getElementById("ticket-tif").value = amend ? row.dataset.amendTif : "day";
    document.getElementById("ticket-expire").value = amend ? (row.dataset.amendExpire || "") : "";
    document.getElementById("ticket-error").textContent = "";
    dialog.showModal();
    const first = amend ? quantity : document.getElementById("ticket-broker");
    first.focus();
    if (first.select) first.select();
  }

  function close() {
    if (dialog && dialog.open) dialog.close();
    if (ticketRow) {
      const again = document.getElementById(ticketRow.id);
      if (again) again.focus();
    }
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const amend = dialog.dataset.kind === "amend";
      if (amend) data.delete("broker");
      else { data.delete("limit_price"); data.delete("time_in_force"); data.delete("expire_at"); }
      if (!data.get("limit_price")) data.delete("limit_price");
      if (!data.get("expire_at")) data.delete("expire_at");
      const send = document.getElementById("ticket-send");
      send.disabled = true;
      try {
        const response = await fetch(ticketUrl, {
          method: "POST",
          body: data,
          headers: { Accept: "application/json", "X-CSRFToken": csrf.value },
        });
        const answer = await response.json();
        if (answer.ok) {
          changed.add(ticketRow.dataset.block);
          schedule(0);
          close();
        } else {
          document.getElementById("ticket-error").textContent = answer.errors.join(" ");
        }
      } catch (error) {
        document.getElementById("ticket-error").textContent = "Not sent: " + error;
      } finally {
        send.disabled = false;
      }
    });
    document.getElementById("ticket-close").addEventListener("click", close);
    dialog.addEventListener("close", () => { if (ticketRow) ticketRow.focus(); });
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest("input, select, textarea, dialog");
    if (typing) return;
    if (event.key === "/") { event.preventDefault(); document.getElementById("blotter-search").focus(); }
    else if (event.key === "ArrowDown" || event.key === "j") { event.preventDefault(); move(1); }
    else if (event.key === "ArrowUp" || event.key === "k") { event.preventDefault(); move(-1); }
    else if (event.key === "r") { event.preventDefault(); open("route"); }
    else if (event.key === "a") { event.preventDefault(); open("amend"); }
    else if (event.key === "Enter" && current()) { window.location.href = current().dataset.url; }
  });
})();
