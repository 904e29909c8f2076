"""Development tools: the code generator and the test server (``es_server``)."""
