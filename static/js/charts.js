// Draws every <canvas data-chart="{json}"> with the vendored Chart.js. The JSON comes
// from the server (portal/reports/services.chart_data): labels, value axes
// (`axes`: id, title, places) and datasets, each naming its axis. Every dataset is
// bound to its axis explicitly: Chart.js would otherwise put a dataset without an
// axis id on the first value axis it finds, which drew money on the calls axis.
// Amounts arrive as decimal strings and become numbers for drawing only.
(function () {
  if (typeof Chart === 'undefined') { return; }
  var palette = ['#0d6efd', '#dc3545', '#198754', '#fd7e14', '#6f42c1'];

  function formatter(places) {
    return function (value) {
      return Number(value).toLocaleString('en-US', { minimumFractionDigits: places, maximumFractionDigits: places });
    };
  }

  document.querySelectorAll('canvas[data-chart]').forEach(function (canvas) {
    var spec;
    try { spec = JSON.parse(canvas.getAttribute('data-chart')); } catch (e) { return; }
    var horizontal = !!spec.horizontal;
    var valueAxis = horizontal ? 'x' : 'y';
    var axes = spec.axes || [{ id: 'value', title: '', places: 2 }];
    var byId = {};
    var scales = {};
    scales[horizontal ? 'y' : 'x'] = { type: 'category' };
    axes.forEach(function (a, i) {
      byId[a.id] = a;
      scales[a.id] = {
        type: 'linear', axis: valueAxis, beginAtZero: true,
        position: horizontal ? (i === 0 ? 'bottom' : 'top') : (i === 0 ? 'left' : 'right'),
        grid: { drawOnChartArea: i === 0 },
        title: { display: !!a.title, text: a.title },
        ticks: { callback: formatter(a.places || 0), precision: a.places || 0 }
      };
    });
    var datasets = spec.datasets.map(function (d, i) {
      var axis = byId[d.axis] ? d.axis : axes[0].id;
      var ds = {
        label: d.label,
        data: d.data.map(Number),
        backgroundColor: palette[i % palette.length],
        borderColor: palette[i % palette.length],
        type: d.kind === 'line' ? 'line' : 'bar',
        order: d.kind === 'line' ? 0 : 1
      };
      ds[valueAxis + 'AxisID'] = axis;
      return ds;
    });
    new Chart(canvas, {
      type: spec.type || 'bar',
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        indexAxis: horizontal ? 'y' : 'x',
        scales: scales,
        plugins: {
          legend: { position: 'bottom' },
          tooltip: { callbacks: { label: function (ctx) {
            var axisId = ctx.dataset[valueAxis + 'AxisID'];
            var a = byId[axisId] || {};
            var v = formatter(a.places || 0)(ctx.parsed[valueAxis]);
            return ctx.dataset.label + ': ' + v;
          } } }
        }
      }
    });
  });
})();
