"""What running a study costs."""
