// Loads the totals of the filtered CDRs from their JSON endpoint so the page itself
// stays one cheap keyset query; without JavaScript the "compute totals" link works.
(function () {
  var box = document.querySelector('[data-totals-url]');
  if (!box || !box.querySelector('[data-totals-fallback]')) { return; }
  var live = box.querySelector('[data-totals-live]');
  fetch(box.getAttribute('data-totals-url'), { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
    .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
    .then(function (t) {
      live.querySelectorAll('[data-total]').forEach(function (el) {
        var key = el.getAttribute('data-total');
        var v = t.display[key];
        el.textContent = (v === null || v === undefined) ? '—' : v;
      });
      var byCurrency = t.display.by_currency, holder = live.querySelector('[data-totals-by-currency]');
      if (holder && byCurrency && byCurrency.length) {
        holder.textContent = 'Customers pay in several currencies; money is not added across them: ' +
          byCurrency.map(function (r) {
            return r.currency + ' revenue ' + r.revenue + ', cost ' + r.cost + ', margin ' + r.margin;
          }).join(' · ');
        holder.classList.remove('d-none');
      }
      box.querySelector('[data-totals-fallback]').classList.add('d-none');
      live.classList.remove('d-none');
    })
    .catch(function () { /* keep the link */ });
})();
