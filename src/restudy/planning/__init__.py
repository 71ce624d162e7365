"""Runs and their seeds."""
