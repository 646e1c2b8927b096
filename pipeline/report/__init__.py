"""The hourly report: charts (``charts`` of the hour, ``trend_charts`` of the past days, drawn
as SVG by ``plot`` and ``svg``), its content (``build``), HTML and Markdown (``render``) and the
console summary (``summary``). Importing this package imports nothing heavy."""
