"""``python -m langchain_es_cache``: the command line."""

from langchain_es_cache.cli import main

raise SystemExit(main())
