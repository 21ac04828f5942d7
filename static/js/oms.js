// Shared by every page: nothing that a page needs to work, only comfort.
// Flash messages fade once read; HTMX requests that fail say so.
document.addEventListener("htmx:responseError", (event) => {
  const status = event.detail.xhr.status;
  if (status === 403) alert("Your role does not allow this.");
  else if (status >= 500) alert("The server could not do this (" + status + "). Try again.");
});
