"""certkit: certificates as a JRE sees them, one implementation for the host, the images and the tests.

Pure Python + cryptography (keytool for Java stores); no Docker and no lab knowledge.
"""
