"""Running the planned runs."""
