"""Pure logic: no Ray imports anywhere under this package (a unit test checks it)."""
