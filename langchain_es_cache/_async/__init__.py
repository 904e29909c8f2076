"""The cache classes, one module each, over the shared logic in ``_common``."""
