"""The leaderboard: submitted records in, tables, plots, release tracking and comparisons out.

Reads records only; never imports torch or transformers (a test checks). The parts:

* store.py   where submissions live, what a submission must pass, `submit`
* table.py   the records as a pandas table; the Markdown and CSV views of it
* svg.py     small, deterministic SVG charts (axes, points, lines, heatmaps)
* plots.py   the board's charts, drawn from records with svg.py
* site.py    the static page (Jinja2 with autoescape, templates/)
* build.py   `board build`: README.md, leaderboard.csv and site/index.html from the submissions
* track.py   a family's releases in order, two records compared, regression thresholds
* export.py  the summary columns as Hugging Face model-index YAML
* cli.py     `sinkbench submit`, `sinkbench board build|track|compare`, `sinkbench export`
"""
