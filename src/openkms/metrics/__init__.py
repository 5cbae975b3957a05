"""Prometheus metrics: what each process records (``recorder``), the names labels may take
(``labels``), the per-start multiprocess directory (``directory``) and the listener that
serves the node's aggregate (``listener``)."""
