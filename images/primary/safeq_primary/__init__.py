"""Stand-in for the SAFEQ Cloud primary server's internal-communication listener."""
