"""Stage 3: measure each site's values (stats/measure.py runs it). Nothing here decides what
is wrong; rules do."""
