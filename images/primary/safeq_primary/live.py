"""Live sessions, judged again when trust changes: policy switched, endpoint untrusted, CA removed, revocation."""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Callable

from certkit.certs import fingerprint
from certkit.jre import ValidatorError, Verdict

from . import account
from .contexts import inbound_anchors
from .policy import NOT_TRUSTED, Decision, Peer, judge

log = logging.getLogger("safeq-cloud-server")
ROUND_BUDGET = 5.0  # seconds of OCSP re-checks per watch round; the rest wait for the next round
ChainJudge = Callable[[list, list], Verdict]  # (chain, anchors) -> the JRE's verdict


class Session:
    """A live, accepted session: the verified peer and how to end it."""

    def __init__(self, tls, endpoint_id: str, peer: Peer):
        self.tls, self.endpoint_id, self.peer = tls, endpoint_id, peer
        self.sha256 = fingerprint(peer.chain[0])
        self.closed: Decision | None = None

    def close(self, decision: Decision) -> None:
        self.closed = decision
        try:
            self.tls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class LiveSessions:
    def __init__(self, registry, revocation, chain_judge: ChainJudge):
        self.registry, self.revocation, self.chain_judge = registry, revocation, chain_judge
        self._sessions: set[Session] = set()
        self._lock = threading.Lock()
        self._cursor = 0

    def add(self, sess: Session) -> None:
        with self._lock:
            self._sessions.add(sess)

    def discard(self, sess: Session) -> None:
        with self._lock:
            self._sessions.discard(sess)

    def snapshot(self) -> list[Session]:
        with self._lock:
            return sorted(self._sessions, key=lambda s: s.endpoint_id)

    def rejudge(self, *, removed_ca: str | None = None, recheck_revocation: bool = False) -> int:
        """Disconnect sessions that no longer pass; they reconnect and are judged anew. Returns how many."""
        policy = account.settings()["certificate_policy"]
        sessions = self.snapshot()
        anchors = inbound_anchors() if policy == "trusted-ca" and sessions else []
        revocations = self._recheck(sessions) if recheck_revocation else {}
        closed = 0
        for sess in sessions:
            record = self.registry.get(sess.endpoint_id)
            decision = self._decide(sess, policy, anchors, record, revocations.get(sess))
            if decision.accepted:
                if record and sess.peer.policy == "trusted-ca" and record.get("reason") != decision.reason:
                    self.registry.update(sess.endpoint_id, reason=decision.reason)
                continue
            if removed_ca and decision.decision == NOT_TRUSTED and sess.peer.policy == policy == "trusted-ca":
                decision = Decision(NOT_TRUSTED, f"{decision.reason} ({removed_ca} was removed from the "
                                                 "Trusted CA certificates list)")
            log.warning("Disconnecting endpoint %s (%s %s): %s", sess.endpoint_id, sess.peer.role, sess.peer.name,
                        decision.reason)
            sess.close(decision)
            closed += 1
        return closed

    def _decide(self, sess: Session, policy: str, anchors: list, record: dict | None, revocation) -> Decision:
        verdict = None
        if sess.peer.policy == policy == "trusted-ca":
            try:
                verdict = self.chain_judge(list(sess.peer.sent or sess.peer.chain), anchors)
            except ValidatorError as exc:  # no verdict: end the session, its reconnect is judged afresh
                return Decision(NOT_TRUSTED, f"the JRE could not judge the chain again: {exc}")
        return judge(sess.peer, policy=policy, chain_verdict=verdict, record=record, revocation=revocation)

    def _recheck(self, sessions: list[Session]) -> dict:
        """OCSP answers for live trusted-ca sessions, within a time budget, starting where the last round stopped.

        Only a definite answer (revoked, unknown) ends a live session; an unreachable responder does not."""
        todo = [s for s in sessions if s.peer.policy == "trusted-ca"]
        if not todo or self.revocation.checker() is None:
            return {}
        start = self._cursor % len(todo)
        deadline = time.monotonic() + ROUND_BUDGET
        answers = {}
        for i in range(len(todo)):
            if time.monotonic() > deadline:
                log.info("Revocation re-check: %d of %d sessions left for the next round", len(todo) - i, len(todo))
                self._cursor = start + i
                return answers
            sess = todo[(start + i) % len(todo)]
            result = self.revocation.check(list(sess.peer.chain))
            if result is not None and result.status in ("revoked", "unknown"):
                answers[sess] = result
        self._cursor = 0
        return answers

    def watch(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Connected endpoints are checked again as their cached answers expire."""
        while not stop.wait(interval):
            try:
                if self.revocation.checker() is not None:
                    self.rejudge(recheck_revocation=True)
            except Exception:  # noqa: BLE001 - the watch must outlive one bad answer; logged, retried next round
                log.exception("Revocation re-check failed; trying again in %.0f s", interval)
