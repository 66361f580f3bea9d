"""Test infrastructure: a throwaway PostgreSQL cluster and a live `wexlot serve` subprocess."""
