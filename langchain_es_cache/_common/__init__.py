"""Pure logic shared by the async source and its generated twin, one subject
per module. Nothing here sends a request."""
