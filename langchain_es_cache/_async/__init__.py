"""The cache classes, one module each, and the stream mixins of ``cache_streams``,
over the shared logic in ``_common``."""
