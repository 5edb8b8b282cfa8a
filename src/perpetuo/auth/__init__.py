"""Who is calling: credentials to principals, and what a principal may do."""
