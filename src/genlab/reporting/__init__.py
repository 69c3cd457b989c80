"""Run folders, image grids and reports."""
