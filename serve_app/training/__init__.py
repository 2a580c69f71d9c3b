"""Training-data tooling for the layout detector (synthetic PubLayNet-style pages)."""
