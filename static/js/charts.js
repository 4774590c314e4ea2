// Draws every <canvas data-chart="{json}"> with the vendored Chart.js. The JSON comes
// from the server (portal/reports/services.chart_data); amounts arrive as decimal
// strings and are turned into numbers for drawing only — tables show exact values.
(function () {
  if (typeof Chart === 'undefined') { return; }
  var palette = ['#0d6efd', '#dc3545', '#198754', '#fd7e14', '#6f42c1'];
  document.querySelectorAll('canvas[data-chart]').forEach(function (canvas) {
    var spec;
    try { spec = JSON.parse(canvas.getAttribute('data-chart')); } catch (e) { return; }
    var hasRightAxis = false;
    var datasets = spec.datasets.map(function (d, i) {
      var ds = {
        label: d.label,
        data: d.data.map(Number),
        backgroundColor: palette[i % palette.length],
        borderColor: palette[i % palette.length],
        type: d.kind === 'line' ? 'line' : 'bar'
      };
      if (d.axis === 'y1') { ds.yAxisID = 'y1'; hasRightAxis = true; }
      return ds;
    });
    var scales = {};
    if (hasRightAxis) {
      scales.y1 = { position: 'right', beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: 'calls' } };
      scales.y = { beginAtZero: true, title: { display: true, text: 'amount' } };
    }
    new Chart(canvas, {
      type: spec.type || 'bar',
      data: { labels: spec.labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        indexAxis: spec.horizontal ? 'y' : 'x',
        scales: scales,
        plugins: { legend: { position: 'bottom' } }
      }
    });
  });
})();
