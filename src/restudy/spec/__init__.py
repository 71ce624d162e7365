"""Study file to typed study and settings."""
