"""Numbers, tables, figures."""
