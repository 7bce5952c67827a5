"""Whether the broker answers, as this instance last saw it: an outage is logged once.

Every publish, subscription and follower meets the same outage; logging each of them (with
a traceback) would bury the one line an operator needs. The first failure after success
logs a WARNING, the first success after failure logs the recovery; the rest is DEBUG.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("powermemo_gql.broker")


class BrokerHealth:
    def __init__(self, subject: str = "the message broker", meanwhile: str = "") -> None:
        self.available = True
        self._subject = subject
        self._meanwhile = f"; {meanwhile}" if meanwhile else ""

    def failed(self, what: str, error: BaseException) -> None:
        if self.available:
            self.available = False
            logger.warning(
                "%s is unavailable (%s: %r)%s", self._subject, what, error, self._meanwhile
            )
        else:
            logger.debug("%s is still unavailable (%s: %r)", self._subject, what, error)

    def succeeded(self) -> None:
        if not self.available:
            self.available = True
            logger.warning("%s is available again", self._subject)
