"""Runtime shared by the lab's stand-in services (stdlib + cryptography + keytool)."""
