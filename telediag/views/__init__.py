"""Views: the same results for a terminal, a report and a notebook."""
