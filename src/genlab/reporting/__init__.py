"""Reading run results and rendering them: the claims table, plots, HTML and Markdown."""
