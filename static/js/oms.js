// Shared by every page: nothing that a page needs to work, only comfort.
// HTMX requests that fail say so; a form with data-confirm asks first; a polled
// blotter row waits while its route form is being filled in. Handlers live here,
// not in the templates: the Content-Security-Policy allows no inline script.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});
document.addEventListener("htmx:beforeRequest", (event) => {
  const row = event.detail.elt;
  if (row.matches("tbody.block.is-live") && row.querySelector("form.route-form:focus-within")) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  if (status === 403) alert("Your role does not allow this.");
  else if (status >= 500) alert("The server could not do this (" + status + "). Try again.");
});
