// Small progressive enhancements; every page works without JavaScript.
document.addEventListener('submit', function (event) {
  // Forms with data-confirm ask before destructive actions.
  var form = event.target;
  var message = form.getAttribute('data-confirm');
  if (message && !window.confirm(message)) { event.preventDefault(); return; }
  // Disable submit buttons of long-running forms and show progress.
  if (form.hasAttribute('data-progress')) {
    form.querySelectorAll('button[type=submit]').forEach(function (b) {
      b.disabled = true;
      b.insertAdjacentHTML('afterbegin', '<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>');
    });
  }
}, true);
