"""Where the primary keeps things: the doc's /opt/safeqcloud layout plus lab state."""
from pathlib import Path

CONF = Path("/opt/safeqcloud/conf/application.conf")
JRE = Path("/opt/safeqcloud/jre")
KEYTOOL = str(JRE / "bin/keytool")
CACERTS = str(JRE / "lib/security/cacerts")
CACERTS_PASSWORD = "changeit"
STATE = Path("/var/lib/safeqcloud")
ACCOUNT = STATE / "account"
TRUSTED_CA_DIR = ACCOUNT / "trusted-ca"
SETTINGS = ACCOUNT / "settings.json"
ENDPOINTS = STATE / "endpoints.json"
RUN = Path("/run/safeqcloud")
STATUS = RUN / "status.json"
LOG = Path("/var/log/safeqcloud/server.log")
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PORT = 2560
BUILTIN = STATE / "builtin"  # the primary's own built-in certificate (the "localhost" one)
ADMIN_PORT = 9780  # admin API, bound to the container's loopback only
ADMIN_SOCKET_DIR = Path("/run/safeq-admin")  # a volume shared with the portal only
ADMIN_SOCKET = ADMIN_SOCKET_DIR / "admin.sock"
