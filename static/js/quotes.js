// Live prices on a page (see portfolios/services/quotes.py, topic "quotes"):
// - a position row, <tr data-live-position data-ticker data-qty data-multiplier data-accrued
//   data-fx data-cost data-prev data-max-age data-at>, gets its price, value (quantity x
//   (price x multiplier + accrued interest per unit): portfolios/terms.py), value in base,
//   unrealised and day P&L recomputed from each quote, and the table's totals;
// - any <span data-quote="TICKER"> shows the ticker's latest price (the blotter).
// A price older than its row's data-max-age seconds (default 900) is marked stale,
// re-checked every few seconds, so a feed that stops shows as stale without a reload.
(function () {
  "use strict";
  const latest = new Map(); // ticker -> [price, bid, ask, epoch seconds]
  const stateLabel = document.querySelector("[data-quotes-state]");
  const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const priceFmt = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 6 });
  const num = (text) => (text === undefined || text === "" ? null : Number(text));

  function set(el, text) { if (el && el.textContent !== text) el.textContent = text; }

  function stale(at, maxAge) {
    return at === null || Date.now() / 1000 - at > (maxAge || 900);
  }

  function paintRow(tr) {
    const quote = latest.get(tr.dataset.ticker);
    if (quote && quote[0] !== null) {
      const [price, , , at] = quote;
      tr.dataset.at = String(at);
      const qty = num(tr.dataset.qty), mult = num(tr.dataset.multiplier) || 1;
      const fx = num(tr.dataset.fx), cost = num(tr.dataset.cost), prev = num(tr.dataset.prev);
      const accrued = num(tr.dataset.accrued) || 0;
      const value = qty * (mult * price + accrued);
      const clean = qty * mult * price;
      set(tr.querySelector('[data-col="price"]'), priceFmt.format(price));
      set(tr.querySelector('[data-col="value"]'), money.format(value));
      if (fx !== null) {
        tr.dataset.valueBase = String(value * fx);
        tr.dataset.unrealised = String((clean - cost * mult) * fx);
        set(tr.querySelector('[data-col="value-base"]'), money.format(value * fx));
        set(tr.querySelector('[data-col="unrealised"]'), money.format((clean - cost * mult) * fx));
        if (prev !== null) {
          tr.dataset.dayPnl = String(qty * mult * (price - prev) * fx);
          set(tr.querySelector('[data-col="day-pnl"]'), money.format(qty * mult * (price - prev) * fx));
        }
      }
      markStale(tr);
      return true;
    }
    markStale(tr);
    return false;
  }

  // A moved row flashes, at most once a second: a row quoted every tick would otherwise
  // restart its animation (a forced layout per row) on every message and never settle.
  const flashedAt = new WeakMap();
  function flash(rows) {
    const now = performance.now();
    const due = rows.filter((tr) => !(now - (flashedAt.get(tr) ?? -Infinity) < 1000));
    if (!due.length) return;
    due.forEach((tr) => { tr.classList.remove("flash"); flashedAt.set(tr, now); });
    void document.body.offsetWidth; // one layout restarts them all
    due.forEach((tr) => tr.classList.add("flash"));
  }

  function markStale(tr) {
    const badge = tr.querySelector('[data-col="freshness"]');
    if (!badge || badge.textContent === "missing") return;
    const isStale = stale(num(tr.dataset.at), num(tr.dataset.maxAge));
    badge.hidden = !isStale;
    badge.textContent = isStale ? "stale" : "fresh";
    badge.className = "badge badge-" + (isStale ? "stale" : "fresh");
    tr.classList.toggle("row-stale", isStale);
  }

  function totals() {
    document.querySelectorAll("table[data-live-positions]").forEach((table) => {
      for (const [key, attr] of [["value-base", "valueBase"], ["unrealised", "unrealised"], ["day-pnl", "dayPnl"]]) {
        const cell = table.querySelector('[data-total="' + key + '"]');
        if (!cell) continue;
        let sum = 0, any = false;
        table.querySelectorAll("tr[data-live-position]").forEach((tr) => {
          if (tr.dataset[attr] !== undefined) { sum += Number(tr.dataset[attr]); any = true; }
        });
        if (any) set(cell, money.format(sum));
      }
    });
  }

  function paintSpans(ticker) {
    const quote = latest.get(ticker);
    if (!quote) return;
    document.querySelectorAll('[data-quote="' + CSS.escape(ticker) + '"]').forEach((el) => {
      set(el, quote[0] === null ? "" : priceFmt.format(quote[0]));
      el.classList.toggle("quote-stale", stale(quote[3], num(el.dataset.maxAge)));
      el.title = (quote[1] !== null ? "bid " + quote[1] + " · ask " + quote[2] + " · " : "") +
        new Date(quote[3] * 1000).toLocaleTimeString();
    });
  }

  function apply(q) {
    const touched = Object.keys(q);
    touched.forEach((ticker) => latest.set(ticker, q[ticker]));
    const moved = [];
    document.querySelectorAll("tr[data-live-position]").forEach((tr) => {
      if (tr.dataset.ticker in q && paintRow(tr)) moved.push(tr);
    });
    flash(moved);
    touched.forEach(paintSpans);
    totals();
  }

  // The blotter re-renders its rows: a new row's span gets the price already known.
  const observer = new MutationObserver(() => latest.forEach((_, ticker) => paintSpans(ticker)));
  document.querySelectorAll("tbody").forEach((body) => observer.observe(body, { childList: true }));

  async function first() {
    const tickers = new Set();
    document.querySelectorAll("[data-quote]").forEach((el) => tickers.add(el.dataset.quote));
    if (!tickers.size) return;
    const url = "/api/v1/quotes/?page_size=500&symbols=" + encodeURIComponent(Array.from(tickers).join(","));
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok) return;
      const body = await response.json();
      const q = {};
      (body.results || []).forEach((r) => {
        if (r.price !== null) q[r.security] = [Number(r.price), r.bid && Number(r.bid), r.ask && Number(r.ask), Date.parse(r.at) / 1000];
      });
      apply(q);
    } catch (error) { /* the push channel fills them in */ }
  }

  if (window.OMS && window.OMS.push) {
    window.OMS.push.subscribe("quotes", (event) => { if (event.q) apply(event.q); }, {
      onState: (text) => set(stateLabel, "prices " + text),
    });
  }
  first();
  setInterval(() => {
    document.querySelectorAll("tr[data-live-position]").forEach(markStale);
    latest.forEach((_, ticker) => paintSpans(ticker));
  }, 5000);
})();
