"""Every stand-in stops cleanly on SIGTERM inside compose's 2 s grace period (exit 0, not SIGKILL's 137).
Throwaway containers of each image, so the running lab is not touched; they run side by side."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from lab import engine

IMAGES = ["primary", "gateway", "client", "ocsp", "portal"]
# The portal does not start without its login (`up` mounts it): a throwaway one made in the container.
COMMANDS = {"portal": ["sh", "-c", "umask 077; echo '{\"user\": \"a\", \"password\": \"b\"}' > /run/login && "
                                   "SAFEQ_PORTAL_LOGIN=/run/login exec safeq-portal serve"]}


def start_and_stop(image: str) -> tuple[int, bool]:
    box = engine.run_detached(f"safeq-lab/{image}:latest", command=COMMANDS.get(image))
    try:
        # Let the service come up (or settle in its error state without /pki) before stopping it.
        settled = engine.execute(box, ["sh", "-c", "for i in $(seq 50); do pgrep -f 'safeq|ocsp' >/dev/null && break; "
                                                   "sleep 0.1; done; sleep 1"], timeout=30)
        assert settled.returncode == 0, settled.stderr
        return engine.stop(box, grace=2)
    finally:
        engine.remove(box)


@pytest.fixture(scope="module")
def stopped() -> dict:
    """image -> (exit code, OOM-killed), each container on its own thread."""
    with ThreadPoolExecutor(len(IMAGES)) as pool:
        return dict(zip(IMAGES, pool.map(start_and_stop, IMAGES)))


@pytest.mark.parametrize("image", IMAGES)
def test_sigterm_stops_the_service_cleanly(stopped, image):
    code, oom = stopped[image]
    assert (code, oom) == (0, False), f"{image} did not stop on SIGTERM within 2 s: exit {code}"
