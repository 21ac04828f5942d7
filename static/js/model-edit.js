// Model editor: add and remove rows, and the total (cash included) as the PM types.
// The server checks the same rule on save (exactly 100%); this only shows it early.
// Also: the assign page's "select all".
(function () {
  const PLACES = 1e6;

  function number(text) {
    const cleaned = String(text || "").replace("%", "").trim();
    if (cleaned === "") return 0;
    const value = Number(cleaned);
    return Number.isFinite(value) ? value : NaN;
  }

  function shown(value) {
    return (Math.round(value * PLACES) / PLACES).toLocaleString("en-US", { maximumFractionDigits: 6 }) + "%";
  }

  function total(form) {
    const out = form.querySelector("[data-total]");
    const note = form.querySelector("[data-total-note]");
    if (!out) return;
    let sum = number((form.querySelector("[data-cash]") || {}).value);
    form.querySelectorAll("[data-weight]").forEach((input) => (sum += number(input.value)));
    out.classList.remove("badge-in", "badge-failed");
    if (Number.isNaN(sum)) {
      out.textContent = "not a number";
      out.classList.add("badge-failed");
      note.textContent = "a weight is not a number";
      return;
    }
    const rounded = Math.round(sum * PLACES) / PLACES;
    out.textContent = shown(rounded);
    if (rounded === 100) {
      out.classList.add("badge-in");
      note.textContent = "";
    } else {
      out.classList.add("badge-failed");
      note.textContent = rounded < 100 ? shown(100 - rounded) + " left to allocate" : shown(rounded - 100) + " over 100%";
    }
  }

  document.addEventListener("input", (event) => {
    const form = event.target.closest("[data-model-form]");
    if (form) total(form);
  });
  document.addEventListener("click", (event) => {
    const form = event.target.closest("[data-model-form]");
    if (!form) return;
    const add = event.target.closest("[data-add-row]");
    if (add) {
      const kind = add.dataset.addRow;
      const template = document.getElementById(kind + "-row-template");
      const body = form.querySelector('[data-rows="' + kind + '"]');
      body.appendChild(template.content.cloneNode(true));
      const rows = body.querySelectorAll("[data-row]");
      const first = rows[rows.length - 1].querySelector("input, select");
      if (first) first.focus();
    }
    const remove = event.target.closest("[data-remove-row]");
    if (remove) {
      remove.closest("[data-row]").remove();
      total(form);
    }
  });
  document.addEventListener("change", (event) => {
    if (!event.target.matches("[data-select-all]")) return;
    const form = event.target.closest("form");
    form.querySelectorAll('input[name="portfolios"]').forEach((box) => (box.checked = event.target.checked));
  });
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-model-form]").forEach(total);
  });
})();
