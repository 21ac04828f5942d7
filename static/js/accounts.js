// Accounts page: select accounts to rebalance; keep the sort when the filter changes.
(function () {
  function sync(root) {
    const boxes = root.querySelectorAll('input[name="portfolios"]');
    const chosen = root.querySelectorAll('input[name="portfolios"]:checked').length;
    root.querySelectorAll("[data-selected-count]").forEach((el) => (el.textContent = chosen));
    root.querySelectorAll("[data-needs-selection]").forEach((el) => (el.disabled = chosen === 0));
    const all = root.querySelector("[data-select-all]");
    if (all) all.checked = boxes.length > 0 && chosen === boxes.length;
  }
  document.addEventListener("change", (event) => {
    const form = event.target.closest("#rebalance-form");
    if (!form) return;
    if (event.target.matches("[data-select-all]")) {
      form.querySelectorAll('input[name="portfolios"]').forEach((box) => (box.checked = event.target.checked));
    }
    sync(form);
  });
  document.addEventListener("htmx:afterSettle", () => {
    const form = document.getElementById("rebalance-form");
    if (form) sync(form);
    const sort = new URLSearchParams(location.search).get("sort");
    const hidden = document.querySelector('form.filters input[name="sort"]');
    if (hidden && sort) hidden.value = sort;
  });
  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("rebalance-form");
    if (form) sync(form);
  });
})();
