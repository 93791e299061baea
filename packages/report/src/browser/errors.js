// Runs first in report.html: every script error, unhandled rejection, console.error call and
// blocked load is recorded in document.body.dataset.errors (one per line), so that a headless
// browser's dumped DOM shows whether the page rendered cleanly.
(() => {
  const errors = [];
  const record = (message) => {
    errors.push(String(message).replace(/\n/g, " "));
    document.body.dataset.errors = errors.join("\n");
  };
  window.addEventListener("error", (e) => record(`${e.message} (${e.filename}:${e.lineno})`));
  window.addEventListener("unhandledrejection", (e) => record(`unhandled rejection: ${e.reason}`));
  document.addEventListener("securitypolicyviolation", (e) => record(`blocked: ${e.blockedURI}`));
  const consoleError = console.error.bind(console);
  console.error = (...args) => {
    record(args.map(String).join(" "));
    consoleError(...args);
  };
})();
