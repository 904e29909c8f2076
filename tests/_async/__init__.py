"""The tests of both twins, one module per subject."""
