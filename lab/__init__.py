"""safeq-lab: orchestrator for the SAFEQ Cloud trusted-certificates lab."""
