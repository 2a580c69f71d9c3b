"""Ray plumbing that is not a deployment: page tasks, the shared-weights holder actor, process priority,
and how failures look when they cross Ray."""
