"""The hourly report: charts (``charts``, drawn as SVG by ``plot`` and ``svg``), its content
(``build``), HTML and Markdown (``render``) and the console summary (``summary``). Importing this
package imports nothing heavy."""
