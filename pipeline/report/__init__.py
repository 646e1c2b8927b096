"""The hourly report: charts (``charts``), its content (``build``), HTML and Markdown
(``render``) and the console summary (``summary``). Importing this package imports nothing heavy:
matplotlib is loaded only when a chart is drawn."""
