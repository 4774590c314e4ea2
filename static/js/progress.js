// Polls a job's status URL (data-progress-url) and updates its progress bar;
// reloads the page when the job has finished. Without JavaScript the page
// refreshes itself with a meta refresh instead.
(function () {
  var box = document.querySelector('[data-progress-url]');
  if (!box) { return; }
  var url = box.getAttribute('data-progress-url');
  var bar = box.querySelector('[data-progress-bar]');
  var text = box.querySelector('[data-progress-text]');
  var unit = box.getAttribute('data-progress-unit') || 'lines';
  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.done) { window.location.reload(); return; }
        var lines = s.processed_lines || 0;
        text.textContent = (s.phase || s.status) + ' · ' + (unit === 'steps'
          ? 'step ' + lines + ' of ' + s.total_lines : lines.toLocaleString() + ' lines');
        if (bar && s.percent !== null && s.percent !== undefined) { bar.style.width = s.percent + '%'; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 500);
})();
