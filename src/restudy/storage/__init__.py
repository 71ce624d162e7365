"""Records, store, artifacts, environment."""
