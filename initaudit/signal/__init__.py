"""Stage 3b: the signal's scale through depth (IA203), predicted from the graph and E[w²]."""
