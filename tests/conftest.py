"""tests/ holds this conftest, so pytest puts tests/ on sys.path (its rootdir-based import mode):
unit and infra checks both import their shared fixtures from the `support` package."""
