"""The SAFEQ Cloud web portal stand-in."""
