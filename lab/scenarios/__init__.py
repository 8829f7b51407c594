"""The scenario catalog, its runner and the exercise commands (scenarios/*.toml is the data)."""
